/**
 * The metrics as Prometheus reads them (issue 13.2): both services' expositions, after some
 * traffic, pass `promtool check metrics` (Prometheus's own parser and linter: names, units in
 * base units, `_total` on counters, help text), carry the default process and Node.js metrics
 * and `gatehouse_build_info`, and every `gatehouse_` family is listed, with its type, in
 * docs/operations.md. Real processes: issuer and gateway.
 * promtool: Debian's `prometheus` package (.ci/run installs it).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { bearer, request, ROOT, serviceToken, startStack, type GatewayProcess } from './fixtures/processes.ts'

const PROMTOOL = process.env.PROMTOOL_PATH ?? '/usr/bin/promtool'

const stack = await startStack(t)
const { issuer } = stack
const gateway = stack.gateways[0] as GatewayProcess
// Some of everything: tokens, a call, a refusal, a 404 (checked in the first subtest: an
// assertion between top-level awaits would let the file end early).
const token = await serviceToken(issuer)
const statuses = [
  (await request(`${gateway.url}/api/hello`, { headers: bearer(token) })).status,
  (await request(`${gateway.url}/api/hello`)).status,
  (await request(`${gateway.url}/nowhere`)).status
]

t.test('the traffic behind the metrics', async (t) => {
  t.same(statuses, [200, 401, 404])
})

const operations = readFileSync(join(ROOT, 'docs/operations.md'), 'utf8')
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')

/** `# TYPE name type` lines of an exposition. */
function families (text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']))
}

for (const [service, url] of [['issuer', `${issuer.url}/metrics`], ['gateway', `${gateway.url}/metrics`]] as const) {
  t.test(`${service}: the exposition is valid Prometheus, in base units, and documented`, async (t) => {
    const res = await fetch(url)
    t.equal(res.status, 200)
    const text = await res.text()
    const checked = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' })
    t.equal(checked.error, undefined, `promtool runs (${PROMTOOL}; apt-get install prometheus)`)
    t.equal(checked.status, 0, `promtool check metrics: ${checked.stdout}${checked.stderr}`)
    t.equal(`${checked.stdout}${checked.stderr}`.trim(), '', 'no lint problem')

    const types = families(text)
    t.equal(types.get('gatehouse_build_info'), 'gauge')
    t.match(text, new RegExp(`^gatehouse_build_info\\{service="${service}",version="[^"]+",nodejs="v[^"]+"\\} 1$`, 'm'))
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      t.ok(types.has(name.replace(/_total$/, '')) || types.has(name), `default metric ${name}`)
    }
    t.equal(types.get(`gatehouse_${service}_request_duration_seconds`), 'histogram', 'request durations, in seconds')
    const ours = [...types].filter(([name]) => name.startsWith(`gatehouse_${service}_`))
    t.ok(ours.length >= 5, `${ours.length} gatehouse_${service}_ families`)
    for (const [name, type] of ours) {
      t.notMatch(name, /_(milliseconds|ms|minutes|hours)(_|$)/, `${name}: base units`)
      if (type === 'counter') t.match(name, /_total$/, `${name}: a counter ends in _total`)
      t.match(operations, new RegExp(`^\\| \`${name}\` \\| ${type} \\|`, 'm'), `${name}: in docs/operations.md's table, as a ${type}`)
      t.ok(readme.includes(`\`${name}\``), `${name}: listed in the README's operations section`)
    }
  })
}
