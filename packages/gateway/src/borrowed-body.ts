/**
 * A request body lent to one upstream attempt. undici destroys the body stream of a request
 * that fails, even one that never connected; handed the client's own request stream, that
 * would end the client's connection and leave nothing to send to the next upstream. A borrowed
 * view reads from the client's stream only once undici reads (after it connected), and
 * destroying the view leaves the client's stream paused, whole if nothing was read.
 */
import { Readable } from 'node:stream'

/** A view of `source` for one attempt; `source` must not have been read yet by anything else. */
export function borrowBody (source: Readable): Readable {
  source.pause()
  const onData = (chunk: Buffer): void => { if (!view.push(chunk)) source.pause() }
  const onEnd = (): void => { view.push(null) }
  const onError = (err: Error): void => { view.destroy(err) }
  const view: Readable = new Readable({
    read () { source.resume() },
    destroy (err, callback) {
      source.pause()
      source.off('data', onData).off('end', onEnd).off('error', onError)
      callback(err)
    }
  })
  // Paused first, so adding the listener does not start the flow.
  source.on('data', onData).on('end', onEnd).on('error', onError)
  // A body already fully read (small bodies arrive with the headers) still ends the view.
  if (source.readableEnded) view.push(null)
  return view
}
