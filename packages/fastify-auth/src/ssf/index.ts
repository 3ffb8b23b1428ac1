/**
 * `@gatehouse/fastify-auth/ssf`: a Shared Signals (OpenID SSF 1.0) receiver that polls a
 * transmitter for CAEP session-revoked events and puts their sessions and tokens on a
 * revocation list (docs/shared-signals.md).
 */
export { SignalReceiver, type SignalReceiverStats } from './receiver.ts'
export { withSignalSources, type RevocationSource } from './sources.ts'
export { metadataUrlOf, type SignalLog, type SignalReceiverOptions } from './options.ts'
export { TransmitterError } from './transport.ts'
export { SESSION_REVOKED, STREAM_UPDATED, VERIFICATION, type SetError, type SetErrorCode } from './wire.ts'
