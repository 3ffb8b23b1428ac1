/** Time source, injected everywhere so tests can move it. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now (): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** Whole seconds since the epoch, as JWT `iat`/`exp` want them. */
export function epochSeconds (clock: Clock): number {
  return Math.floor(clock.now() / 1000)
}
