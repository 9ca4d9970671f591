// Yjs rooms of weft-relay vs the three Yjs servers people deploy, measured
// in the same run with the same raw clients (lib.mjs; the same client logic,
// timing and loss accounting for every server):
//
//   weft-relay                  ws://ADDR/yjs/{room}; every update stored durably (SQLite, fsync) before fan-out
//   y-websocket-server          @y/websocket-server 0.1.1 (src/server.js), memory only
//   hocuspocus                  @hocuspocus/server 3.4.4, no extensions (memory only); its framing: doc name prefix + Auth
//   y-sweet                     y-sweet 0.9.1 (`y-sweet serve DIR`): filesystem store, checkpoint every 10 s; docs created with POST /doc/new
//
//   bash benches/yjs/run.sh                       # npm ci, installs y-sweet, raises ulimit -n, runs the full set
//   QUICK=1 bash benches/yjs/run.sh               # every scenario, small sizes (< 1 min)
//
// Scenarios (each server started fresh for each scenario):
//   fanout   1 writer → N readers (FANOUT=10,100,1000), FANOUT_UPDATES at 100/s: send→receipt p50/p99, lost
//   rooms    ROOMS=1000 rooms × (1 writer + 1 reader), aggregate RATES=2000,5000,10000 updates/s for
//            DURATION s each: p50/p99, server CPU %, lost, the send rate the load tool reached
//   idle     IDLE=10000 sockets, each joined to its own room (IDLE_ROOMS=k: k rooms shared round-robin):
//            time to connect all, server VmRSS per socket
//   catchup  a fresh client joins a CATCHUP_CHARS=100000-char document: connect → state applied, bytes received
//   ingest   INGEST=10000 single-insert updates sent at once: server CPU seconds until a reader has them all
// SERVERS=weft,yws,hocuspocus,ysweet and SCENARIOS=fanout,rooms,idle,catchup,ingest select; WORKERS=2
// worker threads carry the readers / room clients / idle sockets. OUT=file.json keeps the raw results.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import * as Y from 'yjs'
import { clocks, frame, nowMs, open, pool, pregen, sleep, syncMessage } from './lib.mjs'
import { NAMES, table } from './table.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const env = process.env
const QUICK = env.QUICK === '1'
const list = (v, d) => (v || d).split(',').map((s) => s.trim()).filter(Boolean)
const nums = (v, d) => list(v, d).map(Number)
const cfg = {
  servers: list(env.SERVERS, 'weft,yws,hocuspocus,ysweet'),
  scenarios: list(env.SCENARIOS, 'fanout,rooms,idle,catchup,ingest'),
  fanout: nums(env.FANOUT, QUICK ? '10,100' : '10,100,1000'),
  fanoutUpdates: Number(env.FANOUT_UPDATES || (QUICK ? 50 : 300)),
  rooms: Number(env.ROOMS || (QUICK ? 100 : 1000)),
  rates: nums(env.RATES, QUICK ? '1000' : '2000,5000,10000'),
  duration: Number(env.DURATION || (QUICK ? 1 : 10)) * 1000,
  idle: Number(env.IDLE || (QUICK ? 300 : 10000)),
  idleRooms: Number(env.IDLE_ROOMS || env.IDLE || (QUICK ? 300 : 10000)),
  catchupChars: Number(env.CATCHUP_CHARS || 100000),
  catchupRuns: Number(env.CATCHUP_RUNS || (QUICK ? 3 : 9)),
  ingest: Number(env.INGEST || (QUICK ? 2000 : 10000)),
  workers: Number(env.WORKERS || 2),
  settleMs: QUICK ? 200 : 1000 // pauses between phases, so one phase's tail does not land in the next
}
const log = (...a) => console.error(new Date().toISOString().slice(11, 19), ...a)

// ---------------------------------------------------------------- servers

function cpuMs (pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) * (1000 / 100) // utime + stime, USER_HZ = 100
}
const rssKiB = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1])

function freePort () {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) })
  })
}

async function waitTcp (port, child, ms = 30000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}`)
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true) })
      c.once('error', () => resolve(false))
    })
    if (ok) return
    await sleep(50)
  }
  throw new Error('server did not listen in time')
}

async function startServer (kind) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `weft-yjs-bench-${kind}-`))
  const port = await freePort()
  let cmd
  let args
  const extraEnv = {}
  if (kind === 'weft') {
    cmd = env.WEFT_RELAY_BIN
    if (!cmd) throw new Error('WEFT_RELAY_BIN is not set')
    // bench-only raises: every client comes from 127.0.0.1 (per-IP cap), one
    // writer sends 10k updates at once (rate limits), 10,000 rooms loaded
    args = ['--listen', `127.0.0.1:${port}`, '--data', dir, '--insecure-no-auth',
      '--max-connections', '100000', '--max-connections-per-ip', '100000',
      '--updates-per-sec', '100000', '--update-burst', '100000',
      '--max-loaded-docs', '100000', '--listen-backlog', '4096']
    extraEnv.RUST_LOG = 'warn'
  } else if (kind === 'yws') {
    cmd = process.execPath
    args = [path.join(HERE, 'node_modules/@y/websocket-server/src/server.js')]
    Object.assign(extraEnv, { HOST: '127.0.0.1', PORT: String(port) })
  } else if (kind === 'hocuspocus') {
    cmd = process.execPath
    args = [path.join(HERE, 'hocuspocus-server.mjs'), String(port)]
  } else if (kind === 'ysweet') {
    cmd = env.Y_SWEET_BIN || path.join(HERE, '.y-sweet/bin/y-sweet')
    if (!fs.existsSync(cmd)) throw new Error(`${cmd} missing: run benches/yjs/install-y-sweet.sh`)
    args = ['serve', dir, '--host', '127.0.0.1', '--port', String(port)]
    extraEnv.RUST_LOG = 'warn'
  } else throw new Error(`unknown server ${kind}`)
  const child = spawn(cmd, args, { cwd: HERE, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stdout.resume()
  child.stderr.on('data', (c) => { stderr = (stderr + c).slice(-4000) })
  await waitTcp(port, child)
  const base = `ws://127.0.0.1:${port}`
  return {
    kind,
    name: NAMES[kind],
    base,
    http: `http://127.0.0.1:${port}`,
    pid: child.pid,
    child,
    stderr: () => stderr,
    async stop () {
      child.kill('SIGKILL')
      await new Promise((resolve) => child.exitCode !== null ? resolve() : child.once('exit', resolve))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** y-sweet serves only documents created over HTTP first (`POST /doc/new`). */
async function prepareRooms (server, names) {
  if (server.kind !== 'ysweet') return 0
  const t0 = nowMs()
  const r = await pool(names.length, 32, async (i) => {
    const res = await fetch(`${server.http}/doc/new`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ docId: names[i] })
    })
    if (!res.ok) throw new Error(`POST /doc/new ${res.status}`)
    await res.arrayBuffer()
  })
  if (r.failed) throw new Error(`${r.failed} y-sweet docs not created: ${r.firstError}`)
  return nowMs() - t0
}

const clientOf = (server) => ({ kind: server.kind, base: server.base })

// ---------------------------------------------------------------- workers

function startWorker (data) {
  const w = new Worker(path.join(HERE, 'worker.mjs'), { workerData: data })
  const queue = []
  const waiters = []
  const push = (m) => { const f = waiters.shift(); if (f) f(m); else queue.push(m) }
  w.on('message', push)
  w.on('error', (e) => push({ type: 'error', error: String(e && e.stack) }))
  w.on('exit', () => push({ type: 'exit' }))
  return {
    send: (m) => w.postMessage(m),
    async recv (ms = 600000) {
      const m = queue.length ? queue.shift() : await new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('worker timed out')), ms)
        waiters.push((x) => { clearTimeout(t); resolve(x) })
      })
      if (m.type === 'error' || m.type === 'exit') throw new Error(`worker: ${m.error || 'exited'}`)
      return m
    },
    async close () {
      w.postMessage({ type: 'close' })
      await Promise.race([new Promise((resolve) => w.once('exit', resolve)), sleep(10000)])
      await w.terminate()
    }
  }
}

const split = (xs, k) => Array.from({ length: k }, (_, i) => xs.filter((_, j) => j % k === i)).filter((p) => p.length)

function pct (xs, p) {
  if (!xs.length) return NaN
  const s = Float64Array.from(xs).sort()
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]
}

// ---------------------------------------------------------------- scenarios

async function fanout (server, n) {
  const room = `fanout-${n}`
  const U = cfg.fanoutUpdates
  await prepareRooms(server, [room])
  const parts = split(Array.from({ length: n }, (_, i) => i), cfg.workers)
  const ws = parts.map((p) => startWorker({ task: 'readers', server: clientOf(server), room, n: p.length, updates: U }))
  let failed = 0
  try {
    for (const w of ws) failed += (await w.recv()).failed
    const writer = await open(server, room)
    const { updates } = pregen(U)
    const msgs = updates.map((u) => frame(server, room, syncMessage(2, u)))
    await sleep(300)
    const cpu0 = cpuMs(server.pid)
    const sent = new Float64Array(U)
    const start = nowMs() + 10
    for (let k = 0; k < U; k++) {
      const wait = start + k * 10 - nowMs() // 100 updates/s
      if (wait > 0) await sleep(wait)
      sent[k] = nowMs()
      writer.send(msgs[k])
    }
    for (const w of ws) w.send({ deadline: nowMs() + 10000 })
    const lat = []
    let lost = failed * U
    for (const w of ws) {
      const { recv } = await w.recv()
      for (let i = 0; i < recv.length; i++) {
        if (Number.isNaN(recv[i])) lost++
        else lat.push(recv[i] - sent[i % U])
      }
    }
    const cpuS = (cpuMs(server.pid) - cpu0) / 1000
    writer.terminate()
    return { p50: pct(lat, 0.5), p99: pct(lat, 0.99), lost, expected: n * U, failedReaders: failed, cpuS }
  } finally {
    await Promise.all(ws.map((w) => w.close()))
  }
}

async function rooms (server) {
  const names = Array.from({ length: cfg.rooms }, (_, i) => `room-${i}`)
  const total = cfg.rates.reduce((a, r) => a + (r * cfg.duration) / 1000, 0)
  const perRoom = Math.ceil((total * 1.1) / cfg.rooms) + 10
  await prepareRooms(server, names)
  const parts = split(names, cfg.workers)
  const ws = parts.map((p) => startWorker({ task: 'rooms', server: clientOf(server), names: p, perRoom }))
  const out = {}
  try {
    let failed = 0
    for (const w of ws) { const m = await w.recv(); failed += m.failed; if (m.failed) log(`  ${m.failed} room clients failed: ${m.error}`) }
    await sleep(cfg.settleMs)
    for (const rate of cfg.rates) {
      const cpu0 = cpuMs(server.pid)
      const self0 = process.cpuUsage() // this process, all threads: the load tool
      const t0 = nowMs()
      for (let i = 0; i < ws.length; i++) ws[i].send({ type: 'go', rate: (rate * parts[i].length) / cfg.rooms, duration: cfg.duration, drain: 5000 })
      const done = []
      for (const w of ws) done.push(await w.recv())
      const wall = nowMs() - t0
      const cpu = cpuMs(server.pid) - cpu0
      const self = process.cpuUsage(self0)
      const lat = done.flatMap((d) => Array.from(d.lat))
      const sent = done.reduce((a, d) => a + d.sent, 0)
      out[rate] = {
        p50: pct(lat, 0.5),
        p99: pct(lat, 0.99),
        cpuPct: (cpu / wall) * 100,
        clientCpuPct: ((self.user + self.system) / 1000 / wall) * 100,
        lost: done.reduce((a, d) => a + d.lost, 0),
        sent,
        sentPerSec: sent / (Math.max(...done.map((d) => d.sendMs)) / 1000),
        failedClients: failed
      }
      log(`  ${server.name} rooms @${rate}/s`, JSON.stringify(out[rate]))
      await sleep(cfg.settleMs)
    }
    return out
  } finally {
    await Promise.all(ws.map((w) => w.close()))
  }
}

async function idle (server) {
  // IDLE_ROOMS < IDLE puts several sockets in one room (separates a room's
  // memory from a connection's)
  const names = Array.from({ length: cfg.idle }, (_, i) => `idle-${i % cfg.idleRooms}`)
  const createMs = await prepareRooms(server, [...new Set(names)])
  await sleep(cfg.settleMs)
  const rss0 = rssKiB(server.pid)
  const t0 = nowMs()
  const parts = split(names, cfg.workers)
  const ws = parts.map((p) => startWorker({ task: 'idle', server: clientOf(server), names: p, width: 100 }))
  try {
    let failed = 0
    for (const w of ws) { const m = await w.recv(); failed += m.failed; if (m.failed) log(`  ${m.failed} idle sockets failed: ${m.error}`) }
    const ms = nowMs() - t0
    await sleep(2 * cfg.settleMs)
    const rss1 = rssKiB(server.pid)
    const connected = cfg.idle - failed
    return { connectMs: ms, rssPerConnKiB: (rss1 - rss0) / Math.max(connected, 1), rss0, rss1, failed, ysweetCreateMs: createMs }
  } finally {
    await Promise.all(ws.map((w) => w.close()))
  }
}

async function catchUp (server) {
  const room = 'catchup'
  const chars = cfg.catchupChars
  await prepareRooms(server, [room])
  const doc = new Y.Doc()
  const text = doc.getText('t')
  const chunk = 'abcdefghij世界🎉'.repeat(10).slice(0, 100)
  for (let i = 0; i < chars; i += 100) text.insert(text.length, chunk.slice(0, Math.min(100, chars - i)))
  const want = text.length
  const writer = await open(server, room)
  writer.send(frame(server, room, syncMessage(2, Y.encodeStateAsUpdate(doc))))
  await sleep(cfg.settleMs)
  const times = []
  const bytes = []
  for (let r = 0; r < cfg.catchupRuns; r++) {
    const fresh = new Y.Doc()
    const t = fresh.getText('t')
    let got = 0
    const t0 = nowMs()
    let ws
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`catch-up timed out at ${t.length}/${want}`)), 30000)
      const check = () => { if (t.length >= want) { clearTimeout(timer); times.push(nowMs() - t0); bytes.push(got); resolve() } }
      const apply = (p) => { Y.applyUpdate(fresh, p); check() }
      open(server, room, { onStep2: apply, onUpdate: apply, onBytes: (n) => { got += n } }).then((w) => { ws = w }, reject)
    }).finally(() => ws && ws.terminate())
    await sleep(100)
  }
  writer.terminate()
  return { ms: pct(times, 0.5), bytes: pct(bytes, 0.5), runs: times.length }
}

async function ingest (server) {
  const room = 'ingest'
  const n = cfg.ingest
  await prepareRooms(server, [room])
  const seen = new Uint8Array(n)
  let got = 0
  const reader = await open(server, room, {
    onUpdate: (p) => {
      const c = clocks(p)
      if (!c) return
      for (let k = c[1]; k < c[2] && k < n; k++) if (!seen[k]) { seen[k] = 1; got++ }
    }
  })
  const writer = await open(server, room)
  const msgs = pregen(n).updates.map((u) => frame(server, room, syncMessage(2, u)))
  await sleep(cfg.settleMs / 2)
  const cpu0 = cpuMs(server.pid)
  const t0 = nowMs()
  for (const m of msgs) writer.send(m)
  const end = Date.now() + 120000
  while (got < n && Date.now() < end) await sleep(5)
  const wall = nowMs() - t0
  const cpu = cpuMs(server.pid) - cpu0
  reader.terminate(); writer.terminate()
  return { cpuS: cpu / 1000, perSec: got / (wall / 1000), lost: n - got }
}

// ---------------------------------------------------------------- run

const results = {}
const put = (key, kind, v) => { (results[key] ??= {})[kind] = v }
async function withServer (kind, key, fn) {
  let server
  try {
    server = await startServer(kind)
    const t0 = Date.now()
    const v = await fn(server)
    log(`${key} ${NAMES[kind]} (${((Date.now() - t0) / 1000).toFixed(1)} s):`, JSON.stringify(v))
    return v
  } catch (e) {
    log(`${key} ${NAMES[kind]} FAILED: ${e.stack}${server ? `\n${server.stderr()}` : ''}`)
    return { error: String(e.message) }
  } finally {
    if (server) await server.stop()
    await sleep(cfg.settleMs / 2)
  }
}

log('config', JSON.stringify(cfg), 'loadavg', os.loadavg().map((x) => x.toFixed(2)).join(' '), 'cpus', os.cpus().length)
const t0 = Date.now()
for (const sc of cfg.scenarios) {
  for (const kind of cfg.servers) {
    if (sc === 'fanout') {
      const v = await withServer(kind, 'fanout', async (s) => { const o = {}; for (const n of cfg.fanout) o[n] = await fanout(s, n); return o })
      for (const n of cfg.fanout) put(`fanout-${n}`, kind, v.error ? v : v[n])
    } else if (sc === 'rooms') {
      const v = await withServer(kind, 'rooms', rooms)
      for (const r of cfg.rates) put(`rooms-${r}`, kind, v.error ? v : v[r])
    } else if (sc === 'idle') put('idle', kind, await withServer(kind, 'idle', idle))
    else if (sc === 'catchup') put('catchup', kind, await withServer(kind, 'catchup', catchUp))
    else if (sc === 'ingest') put('ingest', kind, await withServer(kind, 'ingest', ingest))
    else throw new Error(`unknown scenario ${sc}`)
  }
}
log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
if (env.OUT) fs.writeFileSync(env.OUT, JSON.stringify({ cfg, results }, null, 1))

console.log(table([{ cfg, results }]))
process.exit(0)
