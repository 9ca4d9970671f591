// One load-generating thread of bench.mjs (worker_threads): the Node client
// side of 1,000 readers or 2,000 room clients or 10,000 idle sockets does
// not fit one event loop, so bench.mjs splits them over WORKERS of these.
// Control: the worker sets up, posts {type:'ready'}, then answers the
// messages bench.mjs sends; every wait is bounded by a deadline.
import { parentPort, workerData } from 'node:worker_threads'
import { clocks, frame, nowMs, open, pool, pregen, sleep, syncMessage } from './lib.mjs'

const { task, server } = workerData
const sockets = []
const next = () => new Promise((resolve) => parentPort.once('message', resolve))

async function readers () {
  // `n` readers on one room; receipt time of each writer clock, per reader
  const { room, n, updates } = workerData
  const recv = new Float64Array(n * updates).fill(NaN)
  const got = new Uint32Array(n)
  const r = await pool(n, 50, async (i) => {
    sockets.push(await open(server, room, {
      onUpdate: (p) => {
        const t = nowMs()
        const c = clocks(p)
        if (!c) return
        for (let k = c[1]; k < c[2] && k < updates; k++) {
          if (Number.isNaN(recv[i * updates + k])) { recv[i * updates + k] = t; got[i]++ }
        }
      }
    }))
  })
  parentPort.postMessage({ type: 'ready', failed: r.failed, error: r.firstError })
  const { deadline } = await next()
  while (nowMs() < deadline && got.some((g) => g < updates)) await sleep(10)
  parentPort.postMessage({ type: 'done', recv }, [recv.buffer])
}

async function rooms () {
  // a writer and a reader per room; the writer sends at `rate` (this
  // worker's share) round-robin over its rooms for `duration` ms
  const { names, perRoom } = workerData
  const w = []
  const t0 = nowMs()
  for (const name of names) {
    const g = pregen(perRoom)
    w.push({ name, updates: g.updates.map((u) => frame(server, name, syncMessage(2, u))), sent: new Float64Array(perRoom).fill(NaN), recv: new Float64Array(perRoom).fill(NaN), next: 0, got: 0, writer: null })
  }
  const pregenMs = nowMs() - t0
  const r = await pool(names.length * 2, 50, async (i) => {
    const room = w[i >> 1]
    if (i & 1) {
      sockets.push(await open(server, room.name, {
        onUpdate: (p) => {
          const t = nowMs()
          const c = clocks(p)
          if (!c) return
          for (let k = c[1]; k < c[2] && k < perRoom; k++) {
            if (Number.isNaN(room.recv[k])) { room.recv[k] = t; room.got++ }
          }
        }
      }))
    } else {
      room.writer = await open(server, room.name)
      sockets.push(room.writer)
    }
  })
  parentPort.postMessage({ type: 'ready', failed: r.failed, error: r.firstError, pregenMs })
  for (;;) {
    const msg = await next()
    if (msg.type === 'close') break
    // {type:'go', rate, duration, drain}
    const live = w.filter((x) => x.writer)
    const first = live.map((x) => x.next)
    const start = nowMs()
    const end = start + msg.duration
    let sent = 0
    let turn = 0
    while (nowMs() < end && live.length) {
      const due = Math.floor(((nowMs() - start) / 1000) * msg.rate)
      let burst = 0
      while (sent < due && burst < 500) {
        const room = live[turn++ % live.length]
        if (room.next >= perRoom) break
        room.sent[room.next] = nowMs()
        room.writer.send(room.updates[room.next++])
        sent++; burst++
      }
      await sleep(1)
    }
    const sendMs = nowMs() - start
    const deadline = nowMs() + msg.drain
    const missing = () => live.some((x) => x.got < x.next)
    while (nowMs() < deadline && missing()) await sleep(10)
    const lat = []
    let lost = 0
    live.forEach((x, j) => {
      for (let k = first[j]; k < x.next; k++) {
        if (Number.isNaN(x.recv[k])) lost++
        else lat.push(x.recv[k] - x.sent[k])
      }
    })
    parentPort.postMessage({ type: 'done', sent, sendMs, lost, lat: Float64Array.from(lat) })
  }
}

async function idle () {
  // one socket per room, opened `width` at a time, then left idle
  const { names, width } = workerData
  const t0 = nowMs()
  const r = await pool(names.length, width, async (i) => { sockets.push(await open(server, names[i], { timeoutMs: 60000 })) })
  parentPort.postMessage({ type: 'ready', ms: nowMs() - t0, failed: r.failed, error: r.firstError })
  await next()
}

try {
  if (task === 'readers') await readers()
  else if (task === 'rooms') await rooms()
  else if (task === 'idle') await idle()
  else throw new Error(`unknown task ${task}`)
  if (task !== 'rooms' && task !== 'idle') await next()
} catch (e) {
  parentPort.postMessage({ type: 'error', error: String(e && e.stack) })
}
for (const ws of sockets) ws.terminate()
parentPort.postMessage({ type: 'closed' })
