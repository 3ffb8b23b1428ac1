import t from 'tap'
import { Counter, Histogram, Registry } from 'prom-client'
import { DURATION_BUCKETS, RequestCounter, RequestHistogram } from '../src/metrics.ts'

// Ours must write exactly what prom-client's own metrics write for the same observations.
t.test('the exposition is the one prom-client writes for its own counter and histogram', async (t) => {
  const ours = new Registry()
  const theirs = new Registry()
  const definition = { name: 'x_requests_total', help: 'Requests, by route and status.', labelNames: ['route', 'status'] }
  const counter = new RequestCounter(ours, definition)
  const reference = new Counter({ ...definition, registers: [theirs] })
  const histogram = new RequestHistogram(ours, { name: 'x_duration_seconds', help: 'Durations.', labelNames: ['route'], buckets: DURATION_BUCKETS })
  const referenceHistogram = new Histogram({ name: 'x_duration_seconds', help: 'Durations.', labelNames: ['route'], buckets: DURATION_BUCKETS, registers: [theirs] })
  const values = [0, 0.0001, 0.0005, 0.00051, 0.003, 0.1, 0.5, 1, 29.9, 30, 31, 1000]
  for (const [i, v] of values.entries()) {
    const route = i % 3 === 0 ? 'api' : 'with "quotes"\n'
    counter.child(route, String(200 + i % 2)).inc()
    reference.inc({ route, status: String(200 + i % 2) })
    histogram.child(route).observe(v)
    referenceHistogram.observe({ route }, v)
  }
  counter.child('api', '200').inc(3)
  reference.inc({ route: 'api', status: '200' }, 3)
  t.equal(await ours.metrics(), await theirs.metrics())
})

t.test('a counter without labels is exposed as 0 before its first count', async (t) => {
  const registry = new Registry()
  const counter = new RequestCounter(registry, { name: 'x_total', help: 'X.' })
  t.match(await registry.metrics(), /^x_total 0$/m)
  counter.child().inc(2)
  t.match(await registry.metrics(), /^x_total 2$/m)
})

t.test('a child is found once and kept: the same object for the same label values', async (t) => {
  const counter = new RequestCounter(new Registry(), { name: 'x_total', help: 'X.', labelNames: ['a'] })
  t.equal(counter.child('1'), counter.child('1'))
  t.not(counter.child('1'), counter.child('2'))
  t.throws(() => counter.child('1', '2'), /1 label values expected, 2 given/)
})

t.test('past 2,000 label combinations, new ones share one (other) child', async (t) => {
  const registry = new Registry()
  const counter = new RequestCounter(registry, { name: 'x_total', help: 'X.', labelNames: ['route'] })
  for (let i = 0; i < 2100; i++) counter.child(`made-up-${i}`).inc()
  const text = await registry.metrics()
  t.equal(text.split('\n').filter((l) => l.startsWith('x_total{')).length, 2001)
  t.match(text, /^x_total\{route="\(other\)"\} 100$/m)
})

t.test('a histogram ignores values that are not finite numbers', async (t) => {
  const registry = new Registry()
  const histogram = new RequestHistogram(registry, { name: 'x_seconds', help: 'X.', buckets: [1] })
  const child = histogram.child()
  child.observe(NaN)
  child.observe(Infinity)
  child.observe(0.5)
  t.match(await registry.metrics(), /^x_seconds_count 1$/m)
  t.match(await registry.metrics(), /^x_seconds_sum 0.5$/m)
})

t.test('the process metrics are collected once, whatever the number of registries', async (t) => {
  const { serviceRegistry } = await import('../src/metrics.ts')
  const first = serviceRegistry('gateway', '1.0.0')
  const text = await first.metrics()
  t.match(text, /^process_cpu_user_seconds_total \d/m)
  t.match(text, /^nodejs_eventloop_lag_p99_seconds \d/m)
  t.match(text, /^gatehouse_build_info\{service="gateway",version="1.0.0",nodejs="v[\d.]+"\} 1$/m)
  t.notMatch(text, /nodejs_active_handles_total/)
  // The same metric objects (one event-loop monitor, one GC observer), not a new set per registry.
  const second = serviceRegistry('issuer', '2.0.0')
  for (const name of ['nodejs_eventloop_lag_seconds', 'nodejs_gc_duration_seconds', 'process_cpu_seconds_total']) {
    t.ok(first.getSingleMetric(name), name)
    t.equal(first.getSingleMetric(name), second.getSingleMetric(name), `${name} is shared`)
  }
  t.match(await second.metrics(), /^gatehouse_build_info\{service="issuer",version="2.0.0",/m)
  t.match(await second.metrics(), /^process_start_time_seconds \d/m)
})
