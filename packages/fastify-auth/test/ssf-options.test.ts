/** A SignalReceiver checks its options at construction (no I/O), naming the bad one. */
import t from 'tap'
import { AuthOptionsError } from '../src/index.ts'
import { MemoryRevocationList } from '../src/revocation/index.ts'
import { metadataUrlOf, SignalReceiver, type SignalReceiverOptions } from '../src/ssf/index.ts'

const revocations = new MemoryRevocationList()
t.teardown(async () => await revocations.close())
const base: SignalReceiverOptions = {
  issuer: 'https://idp.example',
  clientId: 'gateway',
  clientSecret: 'secret',
  appliesTo: ['https://idp.example'],
  revocations,
  entryTtl: 3600
}

const bad: Array<[string, Record<string, unknown>]> = [
  ['options.issuer', { issuer: undefined }],
  ['options.issuer', { issuer: 'idp.example' }],
  ['options.issuer', { issuer: 'ftp://idp.example' }],
  ['options.metadataUrl', { metadataUrl: 'nope' }],
  ['options.tokenEndpoint', { tokenEndpoint: 42 }],
  ['options.clientId', { clientId: undefined }],
  ['options.clientId', { clientSecret: undefined }],
  ['options.clientId', { clientId: '' }],
  ['options.clientSecret', { clientSecret: '' }],
  ['options.bearerToken', { clientId: undefined, bearerToken: 'has spaces in it' }],
  ['options.bearerToken', { bearerToken: 'abc' }],
  ['options.appliesTo', { appliesTo: [] }],
  ['options.appliesTo', { appliesTo: 'https://idp.example' }],
  ['options.appliesTo', { appliesTo: [''] }],
  ['options.revocations', { revocations: {} }],
  ['options.entryTtl', { entryTtl: undefined }],
  ['options.entryTtl', { entryTtl: 0 }],
  ['options.entryTtl', { entryTtl: Number.POSITIVE_INFINITY }],
  ['options.pollWait', { pollWait: 0 }],
  ['options.pollWait', { pollWait: '25' }],
  ['options.description', { description: 'x'.repeat(257) }],
  ['options.algorithms', { algorithms: ['HS256'] }],
  ['options.algorithms', { algorithms: ['none'] }],
  ['options.algorithms', { algorithms: [] }],
  ['options.timeout', { timeout: -1 }],
  ['options.jwksCooldown', { jwksCooldown: Number.NaN }],
  ['options.clock', { clock: {} }],
  ['options.log', { log: { warn () {} } }]
]

for (const [option, overrides] of bad) {
  t.test(`${option}: ${JSON.stringify(overrides)}`, async (t) => {
    const options = { ...base, ...overrides }
    for (const [name, value] of Object.entries(overrides)) if (value === undefined) delete (options as Record<string, unknown>)[name]
    let error: unknown
    try {
      // eslint-disable-next-line no-new
      new SignalReceiver(options as SignalReceiverOptions)
    } catch (err) {
      error = err
    }
    t.type(error, AuthOptionsError)
    t.equal((error as AuthOptionsError).option, option)
  })
}

t.test('good options construct without any I/O', async (t) => {
  const receivers = [
    new SignalReceiver(base),
    new SignalReceiver({ ...base, clientId: undefined, clientSecret: undefined, bearerToken: 'eyJhbGciOi.abc-_~+/==' }),
    new SignalReceiver({ ...base, bearerToken: 'token', clientSecret: undefined, algorithms: ['ES256'], pollWait: 1, description: 'edge-1' })
  ]
  for (const receiver of receivers) {
    t.equal(receiver.staleness, Infinity)
    t.same(receiver.stats, { applied: 0, refused: 0, ignored: 0, polls: 0, failures: 0 })
    await receiver.close()
  }
})

t.test('metadataUrlOf inserts the well-known segment before the issuer path (SSF 1.0)', async (t) => {
  t.equal(metadataUrlOf('https://tr.example.com'), 'https://tr.example.com/.well-known/ssf-configuration')
  t.equal(metadataUrlOf('https://tr.example.com/'), 'https://tr.example.com/.well-known/ssf-configuration')
  t.equal(metadataUrlOf('https://tr.example.com/issuer1'), 'https://tr.example.com/.well-known/ssf-configuration/issuer1')
  t.equal(metadataUrlOf('https://tr.example.com:8443/a/b/'), 'https://tr.example.com:8443/.well-known/ssf-configuration/a/b')
})
