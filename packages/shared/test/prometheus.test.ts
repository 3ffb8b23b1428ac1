/** The Prometheus text writer: escaping, special values, counters with and without a label. */
import t from 'tap'
import { Counter, escapeLabel, Exposition, sampleValue } from '../src/prometheus.ts'

t.test('label values and sample values are written as the format wants', async (t) => {
  t.equal(escapeLabel('a"b\\c\nd'), 'a\\"b\\\\c\\nd')
  t.equal(sampleValue(NaN), 'NaN')
  t.equal(sampleValue(Infinity), '+Inf')
  t.equal(sampleValue(-Infinity), '-Inf')
  t.equal(sampleValue(1.5), '1.5')
})

t.test('counters', async (t) => {
  const plain = new Counter('x_total', 'Plain.')
  const labelled = new Counter('y_total', 'By kind.', 'kind')
  const out = new Exposition()
  plain.writeTo(out)
  labelled.writeTo(out)
  t.equal(out.toString(), '# HELP x_total Plain.\n# TYPE x_total counter\nx_total 0\n# HELP y_total By kind.\n# TYPE y_total counter\n', 'an unlabelled counter starts at 0; a labelled one has no samples yet')
  plain.inc()
  plain.inc('', 2)
  labelled.inc('a')
  labelled.inc('b"')
  labelled.inc('a')
  const again = new Exposition()
  plain.writeTo(again)
  labelled.writeTo(again)
  t.match(again.toString(), 'x_total 3\n')
  t.match(again.toString(), 'y_total{kind="a"} 2\ny_total{kind="b\\""} 1\n')
  t.equal(labelled.get('a'), 2)
  t.equal(labelled.get('missing'), 0)
})
