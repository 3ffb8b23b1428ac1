/** A revocation list seen together with the Shared Signals receivers that feed it. */
import type { RevocationEntry, RevocationList } from '../revocation/types.ts'

/** What the view needs of a source: a {@link SignalReceiver} fits. */
export interface RevocationSource {
  readonly staleness: number
  ready (): Promise<void>
  close (): Promise<void>
}

/**
 * A RevocationList view of `list` whose `staleness` is the largest of the list's and the
 * sources', so a verifier's `maxStaleness` bounds every feed at once; `ready()` waits for the
 * list and every source. `revoke`, `isRevoked`, `size`, `pendingWrites` and `writtenBack` are the list's.
 * `close()` closes the sources, then the list.
 */
export function withSignalSources (list: RevocationList, sources: ReadonlyArray<RevocationSource>): RevocationList {
  const all = [...sources]
  return {
    revoke: async (entry: RevocationEntry, ttlSeconds: number) => { await list.revoke(entry, ttlSeconds) },
    isRevoked: (claims: { jti?: string, sid?: string }) => list.isRevoked(claims),
    // Read on every request: a loop, no array built.
    get staleness () {
      let worst = list.staleness
      for (const source of all) {
        const staleness = source.staleness
        if (staleness > worst) worst = staleness
      }
      return worst
    },
    get size () {
      return list.size
    },
    get pendingWrites () {
      return list.pendingWrites
    },
    get writtenBack () {
      return list.writtenBack
    },
    onKeyChange: (listener) => { list.onKeyChange?.(listener) },
    ready: async () => {
      await Promise.all([list.ready(), ...all.map(async (source) => { await source.ready() })])
    },
    close: async () => {
      await Promise.all(all.map(async (source) => { await source.close() }))
      await list.close()
    }
  }
}
