import t from 'tap'
import { connect } from 'node:net'
import { startRedis } from '../src/redis-harness.ts'

async function ping (port: number): Promise<string> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d) => { socket.destroy(); resolve(d.toString().trim()) })
    socket.on('error', (err) => resolve(`error: ${err.message}`))
  })
}

t.test('spawns a real redis-server on a free port, kills and restarts it', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.stop)
  t.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/)
  t.equal(await ping(redis.port), '+PONG')
  await redis.kill()
  t.match(await ping(redis.port), /^error: /, 'nothing listens after a kill')
  await redis.start()
  t.equal(await ping(redis.port), '+PONG', 'answers again after start')
})

t.test('pauses (SIGSTOP), resumes, and stops even while paused', async (t) => {
  const redis = await startRedis()
  t.teardown(redis.stop)
  await redis.pause()
  t.ok(redis.isPaused)
  const stalled = ping(redis.port)
  const first = await Promise.race([stalled, new Promise((resolve) => setTimeout(() => resolve('no answer yet'), 200))])
  t.equal(first, 'no answer yet', 'a paused server takes the connection but does not answer')
  redis.resume()
  t.equal(await stalled, '+PONG', 'the waiting PING is answered once resumed')
  await redis.pause()
  const pid = redis.pid
  await redis.stop()
  t.notOk(redis.isPaused, 'stop() resumed it')
  t.throws(() => process.kill(pid!, 0), { code: 'ESRCH' }, 'and it is gone')
})
