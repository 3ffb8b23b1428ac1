/**
 * A request body lent to one upstream attempt. undici destroys the body stream of a request
 * that fails, even one that never connected; handed the client's own request stream, that
 * would end the client's connection and leave nothing to send to the next upstream. A borrowed
 * view reads from the client's stream only once undici reads (after it connected), and
 * destroying the view leaves the client's stream paused, whole if nothing was read.
 *
 * The loan also tells what happened on the client's side: how much was read (a body partly
 * sent is never sent again) and whether the client's stream failed (the client left mid-upload:
 * its fault, not the upstream's).
 */
import { Readable } from 'node:stream'

export interface BorrowedBody {
  /** The view to hand to undici. */
  readonly stream: Readable
  /** Bytes read from the client's stream through this view. */
  readonly bytesRead: number
  /** The client's stream failed (aborted, reset) while lent. */
  readonly sourceFailed: boolean
}

/** A view of `source` for one attempt; `source` must not have been read by anything else. */
export function borrowBody (source: Readable): BorrowedBody {
  const loan = { stream: undefined as unknown as Readable, bytesRead: 0, sourceFailed: false }
  source.pause()
  const onData = (chunk: Buffer): void => {
    loan.bytesRead += chunk.length
    if (!view.push(chunk)) source.pause()
  }
  const onEnd = (): void => { view.push(null) }
  const onError = (err: Error): void => {
    loan.sourceFailed = true
    view.destroy(err)
  }
  // A client that leaves mid-upload: 'aborted' comes before (or instead of) an 'error'.
  const onAborted = (): void => { onError(Object.assign(new Error('the client aborted its request'), { code: 'ECONNRESET' })) }
  const view: Readable = new Readable({
    read () { source.resume() },
    destroy (err, callback) {
      source.pause()
      source.off('data', onData).off('end', onEnd).off('error', onError).off('aborted', onAborted)
      callback(err)
    }
  })
  loan.stream = view
  // Paused first, so adding the listener does not start the flow.
  source.on('data', onData).on('end', onEnd).on('error', onError).on('aborted', onAborted)
  // A body already fully read (small bodies arrive with the headers) still ends the view.
  if (source.readableEnded) view.push(null)
  return loan
}
