/** Key rotation and emergency rollover under load, embedded stores (no Redis): see fixtures/key-rollover.ts. */
import t from 'tap'
import { keyRollover } from './fixtures/key-rollover.ts'

await keyRollover(t, false)
