/**
 * A store a service cannot work without is unusable: Redis does not answer or refuses us, the
 * signing-keys file is not one of ours. The message is one line for a person, naming the store
 * (never a credential) and the cause; the CLIs print it alone and exit 1 (docs/operations.md,
 * "At start"). Running services meet the same causes as 503s and /readyz instead.
 */
export class UnusableStoreError extends Error {
  override readonly name = 'UnusableStoreError'
}
