/**
 * The Shared Signals transmitter's endpoints (SSF 1.0, docs/shared-signals.md): metadata,
 * stream management, status, verification and RFC 8936 polling. An encapsulated group that
 * reads JSON bodies only (64 KiB at most) and answers errors as `{err, description}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Client } from '../clients.ts'
import type { IssuerContext } from '../context.ts'
import { authenticateReceiver, type SsfAccess } from '../ssf/auth.ts'
import { invalidSsfRequest, replyWithSsfError, SsfError, streamNotFound } from '../ssf/errors.ts'
import { POLL_DELIVERY, PUSH_DELIVERY, streamUpdated, verification } from '../ssf/events.ts'
import { pollStream, readPollRequest } from '../ssf/poll.ts'
import {
  applySettings, checkTransmitterSupplied, isStreamId, jsonObject, MIN_VERIFICATION_INTERVAL, newStream,
  readReceiverSettings, readStatus, streamConfiguration, type JsonObject
} from '../ssf/streams.ts'
import type { StreamRecord } from '../stores/types.ts'

const JSON_BODY_LIMIT = 64 * 1024
/** A body that is not JSON: refused by the route with a clear 400. */
const NOT_JSON = Symbol('not JSON')
const MAX_STATE_LENGTH = 1024

/** SSF 1.0 6.1 */
export function ssfConfiguration (ctx: IssuerContext): JsonObject {
  const base = ctx.config.issuer.replace(/\/$/, '')
  return {
    spec_version: '1_0',
    issuer: ctx.config.issuer,
    jwks_uri: `${base}/.well-known/jwks.json`,
    delivery_methods_supported: [POLL_DELIVERY, PUSH_DELIVERY],
    configuration_endpoint: `${base}/ssf/streams`,
    status_endpoint: `${base}/ssf/status`,
    verification_endpoint: `${base}/ssf/verify`,
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
    default_subjects: 'ALL'
  }
}

function body (request: FastifyRequest): JsonObject {
  if (request.body === NOT_JSON) throw invalidSsfRequest('the body must be application/json')
  return jsonObject(request.body ?? {})
}

/** `stream_id` from the query or a body: a well-formed id, or a 404 (unknown). */
function streamIdOf (source: unknown, isRequired: true): string
function streamIdOf (source: unknown, isRequired: false): string | undefined
function streamIdOf (source: unknown, isRequired: boolean): string | undefined {
  const value = (source as JsonObject | undefined)?.stream_id
  if (value === undefined) {
    if (isRequired) throw invalidSsfRequest('stream_id is required')
    return undefined
  }
  if (typeof value !== 'string') throw invalidSsfRequest('stream_id must be a string')
  if (!isStreamId(value)) throw streamNotFound()
  return value
}

export function ssfRoutes (ctx: IssuerContext) {
  const signals = ctx.signals
  const streams = signals.streams

  const receiver = async (request: FastifyRequest, access: SsfAccess): Promise<Client> => await authenticateReceiver(ctx, request, access)

  /** The client's own live stream; another client's is as unknown as a missing one. */
  async function ownStream (client: Client, id: string): Promise<StreamRecord> {
    const stream = await signals.store.getStream(id, ctx.clock.now())
    if (stream === null || stream.clientId !== client.id) throw streamNotFound()
    return stream
  }

  /** Saves the stream; the call was receiver activity, so its inactivity timeout restarts. */
  async function save (stream: StreamRecord, skipPending = false): Promise<StreamRecord> {
    const now = ctx.clock.now()
    const next = { ...stream, expiresAt: now + streams.inactivityTimeoutSeconds * 1000 }
    if (!await signals.store.saveStream(next, { skipPending }, now)) throw streamNotFound()
    signals.streamChanged()
    return next
  }

  const send = async (reply: FastifyReply, status: number, payload?: unknown): Promise<FastifyReply> =>
    await reply.code(status).header('cache-control', 'no-store').send(payload)

  return async function (app: FastifyInstance): Promise<void> {
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: JSON_BODY_LIMIT }, app.getDefaultJsonParser('error', 'error'))
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: JSON_BODY_LIMIT }, (_request, _body, done) => { done(null, NOT_JSON) })
    app.setErrorHandler(replyWithSsfError)

    // SSF 1.0 6.2: an issuer with a path has its metadata at the well-known URI plus that path.
    const path = new URL(ctx.config.issuer).pathname.replace(/\/$/, '')
    const metadata = async (_request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      await reply.header('cache-control', 'public, max-age=300').send(ssfConfiguration(ctx))
    }
    app.get('/.well-known/ssf-configuration', metadata)
    if (path !== '') app.get(`/.well-known/ssf-configuration${path}`, metadata)

    app.post('/ssf/streams', async (request, reply) => {
      const client = await receiver(request, 'manage')
      const settings = readReceiverSettings(body(request))
      const now = ctx.clock.now()
      const stream = newStream(client.id, settings, streams, now)
      if (!await signals.store.createStream(stream, signals.maxStreamsPerClient, now)) {
        throw new SsfError(409, 'too_many_streams', `a client holds at most ${signals.maxStreamsPerClient} streams`)
      }
      signals.streamChanged()
      request.log.info({ stream_id: stream.id, method: stream.delivery.method }, 'shared signals: stream created')
      return await send(reply, 201, streamConfiguration(stream, streams))
    })

    app.get('/ssf/streams', async (request, reply) => {
      const client = await receiver(request, 'read')
      const id = streamIdOf(request.query, false)
      if (id !== undefined) return await send(reply, 200, streamConfiguration(await save(await ownStream(client, id)), streams))
      const all = await signals.store.listStreams(client.id, ctx.clock.now())
      return await send(reply, 200, all.sort((a, b) => a.createdAt - b.createdAt).map((s) => streamConfiguration(s, streams)))
    })

    // SSF 1.0 8.1.1.3 (PATCH: the members given) and 8.1.1.4 (PUT: all of them).
    const update = (replace: boolean) => async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const client = await receiver(request, 'manage')
      const given = body(request)
      const stream = await ownStream(client, streamIdOf(given, true))
      checkTransmitterSupplied(given, streamConfiguration(stream, streams))
      const next = applySettings(stream, readReceiverSettings(given), streams, replace)
      return await send(reply, 200, streamConfiguration(await save(next), streams))
    }
    app.patch('/ssf/streams', update(false))
    app.put('/ssf/streams', update(true))

    app.delete('/ssf/streams', async (request, reply) => {
      const client = await receiver(request, 'manage')
      const stream = await ownStream(client, streamIdOf(request.query, true))
      if (!await signals.store.deleteStream(stream.id, client.id)) throw streamNotFound()
      request.log.info({ stream_id: stream.id }, 'shared signals: stream deleted')
      return await send(reply, 204)
    })

    const statusOf = (stream: StreamRecord): JsonObject => ({ stream_id: stream.id, status: stream.status, ...(stream.reason === undefined ? {} : { reason: stream.reason }) })

    app.get('/ssf/status', async (request, reply) => {
      const client = await receiver(request, 'read')
      const stream = await save(await ownStream(client, streamIdOf(request.query, true)))
      return await send(reply, 200, statusOf(stream))
    })

    app.post('/ssf/status', async (request, reply) => {
      const client = await receiver(request, 'manage')
      const given = body(request)
      const stream = await ownStream(client, streamIdOf(given, true))
      const { status, reason } = readStatus(given)
      const next: StreamRecord = { ...stream, status }
      if (reason === undefined) delete next.reason
      else next.reason = reason
      // SSF 1.0 8.1.2: a disabled stream holds nothing, neither before nor while disabled.
      const isSkipping = status !== stream.status && (status === 'disabled' || stream.status === 'disabled')
      const saved = await save(next, isSkipping)
      if (status !== stream.status) await signals.emit([streamUpdated(stream.id, ctx.clock.now(), status, reason)])
      request.log.info({ stream_id: stream.id, status }, 'shared signals: stream status changed')
      return await send(reply, 200, statusOf(saved))
    })

    app.post('/ssf/verify', async (request, reply) => {
      const client = await receiver(request, 'manage')
      const given = body(request)
      const stream = await ownStream(client, streamIdOf(given, true))
      const state = given.state
      if (state !== undefined && (typeof state !== 'string' || state.length > MAX_STATE_LENGTH)) throw invalidSsfRequest(`state must be a string of at most ${MAX_STATE_LENGTH} characters`)
      const now = ctx.clock.now()
      if (stream.verifiedAt !== undefined && now - stream.verifiedAt < MIN_VERIFICATION_INTERVAL * 1000) {
        reply.header('retry-after', String(Math.ceil((stream.verifiedAt + MIN_VERIFICATION_INTERVAL * 1000 - now) / 1000)))
        throw new SsfError(429, 'too_many_requests', `at most one verification every ${MIN_VERIFICATION_INTERVAL} s`)
      }
      await save({ ...stream, verifiedAt: now })
      await signals.emit([verification(stream.id, now, state)])
      return await send(reply, 204)
    })

    app.post('/ssf/poll/:streamId', async (request, reply) => {
      const client = await receiver(request, 'manage')
      const id = (request.params as { streamId: string }).streamId
      if (!isStreamId(id)) throw streamNotFound()
      const stream = await ownStream(client, id)
      if (stream.delivery.method !== POLL_DELIVERY) throw invalidSsfRequest('this stream is delivered by push')
      const poll = readPollRequest(body(request))
      // A client that hangs up mid-poll frees its place at once.
      const gone = new AbortController()
      const onClose = (): void => { if (!reply.raw.writableFinished) gone.abort() }
      reply.raw.once('close', onClose)
      try {
        const answer = await pollStream(signals, stream, poll, gone.signal, request.log)
        if (answer === null) {
          // The client hung up: nobody reads an answer, and its half-closed socket must not
          // linger (it would keep the app's close waiting for the keep-alive timeout).
          request.raw.socket.destroy()
          return await reply.hijack()
        }
        // Released by a closing app: the connection must not then sit idle, keeping close waiting.
        if (signals.isClosing) reply.header('connection', 'close')
        return await send(reply, 200, answer)
      } finally {
        reply.raw.off('close', onClose)
      }
    })
  }
}
