/** Issuer config rules across fields, located like schema problems (file:line:column field). */
import t from 'tap'
import { ConfigError } from '@gatehouse/shared/config'
import { parseIssuerConfig } from '../src/load-config.ts'

const problems = (yaml: string): string[] => {
  try {
    parseIssuerConfig(yaml, 'issuer.yaml', {})
  } catch (err) {
    if (err instanceof ConfigError) return err.message.split('\n')
    throw err
  }
  return []
}

t.test('a public client with the password grant is refused', async (t) => {
  const found = problems(`issuer: http://127.0.0.1:4000
scopes: [{ name: api:read }]
clients:
  - clientId: app
    grants: [password, refresh_token]
    scopes: [api:read]
  - clientId: app-none
    tokenEndpointAuthMethod: none
    grants: [refresh_token, password]
    scopes: [api:read]
`)
  t.match(found, [/^issuer\.yaml:5:14 clients\[0\]\.grants\[0\] password needs a confidential client/, /^issuer\.yaml:9:29 clients\[1\]\.grants\[1\] password needs a confidential client/])
  t.equal(found.length, 2)
})

t.test('a confidential client may have it', async (t) => {
  t.same(problems(`issuer: http://127.0.0.1:4000
scopes: [{ name: api:read }]
clients:
  - { clientId: cli, secret: cli-secret-0123456789, grants: [password, refresh_token], scopes: [api:read] }
`), [])
})
