/** Path normalisation: the spellings that are refused, and the ones that are made canonical. */
import t from 'tap'
import { normalisePath } from '../src/normalise-path.ts'

t.test('accepted, made canonical', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['/', '/', ''],
    ['/api', '/api', ''],
    ['/api/', '/api/', ''],
    ['/api/x?a=b&c=%zz', '/api/x', '?a=b&c=%zz'],
    ['/%61pi/x', '/api/x', ''],
    ['/api/%7e%5F', '/api/~_', ''],
    ['/api/%c3%a9', '/api/%C3%A9', ''],
    ['/api/%3a', '/api/%3A', ''],
    ['/api/..x/x..', '/api/..x/x..', ''],
    ['/api/...', '/api/...', ''],
    // Not allowed raw in a URI: escaped, as a URL parser writes them (and reply-from sent them).
    ['/api/a"b<c>d`e{f}g', '/api/a%22b%3Cc%3Ed%60e%7Bf%7Dg', ''],
    ['/api/{id}/%7b?q={x}', '/api/%7Bid%7D/%7B', '?q={x}'],
    ['/api/a|b^c[d]', '/api/a|b^c[d]', '']
  ]
  for (const [target, path, query] of cases) t.same(normalisePath(target), { path, query }, target)
})

t.test('refused', async (t) => {
  const cases = [
    '', '*', 'api', 'http://evil/api', '//api', '/api//x', '/.', '/..', '/api/.', '/api/..', '/a/../b', '/a/./b',
    '/%2e%2e/api', '/a/%2E/b', '/a%2fb', '/a%2Fb', '/a%5cb', '/a\\b', '/a%00', '/a\u0000b', '/a b', '/a\tb',
    '/a%zz', '/a%4', '/a%', '/a%ff', '/a%c3', '/a%252e', '/a%252F', '/a%255c', '/a%2500', '/é', '/a%7f', '/a%0d%0a'
  ]
  for (const target of cases) t.ok('error' in normalisePath(target), JSON.stringify(target))
})
