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
