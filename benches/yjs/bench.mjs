// Yjs rooms of weft-relay vs the y-websocket server (y-websocket 1.5.4's
// bin/server.js, memory only), measured in the same run with the same
// clients: raw WebSocket readers speaking y-protocols, a Yjs writer.
//
//   cargo build --release -p weft-relay
//   cd benches/yjs && npm ci && WEFT_RELAY_BIN=../../target/release/weft-relay node bench.mjs
//
// Scenarios: fan-out 1 writer → N readers (latency from send to receipt at
// every reader), catch-up of a 100k-character document by a fresh client,
// and server CPU per ingested update. weft-relay stores every update durably
// (SQLite, fsync) before fanning it out; the y-websocket server keeps
// documents in memory only.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import WebSocket from 'ws'
import * as Y from 'yjs'

const BIN = process.env.WEFT_RELAY_BIN
if (!BIN) throw new Error('WEFT_RELAY_BIN is not set')
const READERS = (process.env.READERS || '100,1000').split(',').map(Number)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => Number(process.hrtime.bigint()) / 1e6

function varuint (n) {
  const out = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return out
}
const syncMessage = (sub, body) => Buffer.concat([Buffer.from([0, sub, ...varuint(body.length)]), Buffer.from(body)])

function cpuMs (pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) * 10 // utime + stime, 100 Hz ticks
}

async function startWeft (dir) {
  const child = spawn(BIN, ['--listen', '127.0.0.1:0', '--data', dir, '--insecure-no-auth',
    '--max-connections-per-ip', '100000', '--updates-per-sec', '100000', '--update-burst', '100000'], {
    env: { ...process.env, RUST_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'inherit']
  })
  const addr = await new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (c) => { out += c; const m = out.match(/listening on (\S+)/); if (m) resolve(m[1]) })
    child.on('exit', (c) => reject(new Error(`weft-relay exited ${c}`)))
  })
  child.stdout.resume()
  return { name: 'weft-relay', child, url: (room) => `ws://${addr}/yjs/${room}` }
}

async function startYws () {
  const port = 20000 + Math.floor(Math.random() * 20000)
  const child = spawn(process.execPath, ['node_modules/y-websocket/bin/server.js'], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit']
  })
  await new Promise((resolve) => child.stdout.once('data', resolve))
  child.stdout.resume()
  return { name: 'y-websocket server', child, url: (room) => `ws://127.0.0.1:${port}/${room}` }
}

function open (url, onMessage) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    ws.binaryType = 'nodebuffer'
    ws.on('message', (m) => onMessage && onMessage(m))
    ws.once('open', () => resolve(ws))
    ws.once('error', reject)
  })
}

function percentile (xs, p) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]
}

async function fanout (server, n, updates = 100) {
  const room = `fanout-${n}`
  const sent = []
  const lat = []
  const got = new Array(n).fill(0)
  const readers = []
  for (let i = 0; i < n; i += 50) {
    await Promise.all(Array.from({ length: Math.min(50, n - i) }, (_, j) => open(server.url(room), (m) => {
      if (m[0] === 0 && m[1] === 2) { const k = got[i + j]++; if (k < sent.length) lat.push(now() - sent[k]) }
    }).then((ws) => readers.push(ws))))
  }
  const doc = new Y.Doc()
  const writer = await open(server.url(room))
  const pending = []
  doc.on('update', (u) => pending.push(u))
  await sleep(300)
  for (let k = 0; k < updates; k++) {
    doc.getText('t').insert(0, 'x')
    sent.push(now())
    writer.send(syncMessage(2, pending.shift()))
    await sleep(20)
  }
  const end = Date.now() + 20000
  while (got.some((g) => g < updates) && Date.now() < end) await sleep(20)
  const complete = got.filter((g) => g >= updates).length
  for (const ws of [...readers, writer]) ws.terminate()
  return { p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), complete }
}

async function catchUp (server, chars = 100_000, runs = 15) {
  const room = 'catchup'
  const doc = new Y.Doc()
  const text = doc.getText('t')
  for (let i = 0; i < chars; i += 100) text.insert(text.length, 'abcdefghij世界🎉'.repeat(10).slice(0, 100))
  const writer = await open(server.url(room))
  writer.send(syncMessage(2, Y.encodeStateAsUpdate(doc)))
  await sleep(1000)
  const times = []
  for (let r = 0; r < runs; r++) {
    const t0 = now()
    await new Promise((resolve, reject) => {
      let ws
      const timer = setTimeout(() => reject(new Error('catch-up timed out')), 10000)
      open(server.url(room), (m) => {
        if (m[0] === 0 && m[1] === 1 && m.length > chars) { clearTimeout(timer); times.push(now() - t0); ws.terminate(); resolve() }
      }).then((w) => { ws = w; w.send(syncMessage(0, Y.encodeStateVector(new Y.Doc()))) }, reject)
    })
  }
  writer.terminate()
  return { median: percentile(times, 0.5) }
}

async function ingest (server, updates = 5000) {
  const room = 'ingest'
  let got = 0
  const reader = await open(server.url(room), (m) => { if (m[0] === 0 && m[1] === 2) got++ })
  const writer = await open(server.url(room))
  const doc = new Y.Doc()
  const msgs = []
  doc.on('update', (u) => msgs.push(syncMessage(2, u)))
  for (let k = 0; k < updates; k++) doc.getText('t').insert(k, 'y')
  await sleep(300)
  const cpu0 = cpuMs(server.child.pid)
  const t0 = now()
  for (const m of msgs) writer.send(m)
  const end = Date.now() + 60000
  while (got < updates && Date.now() < end) await sleep(5)
  const wall = now() - t0
  const cpu = cpuMs(server.child.pid) - cpu0
  reader.terminate(); writer.terminate()
  return { perSec: Math.round(got / (wall / 1000)), cpuUsPerUpdate: Math.round((cpu * 1000) / Math.max(got, 1)), got }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-yjs-bench-'))
const rows = []
for (const start of [() => startWeft(dir), startYws]) {
  const server = await start()
  try {
    for (const n of READERS) {
      const r = await fanout(server, n)
      rows.push([server.name, `fan-out 1→${n}`, `p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, ${r.complete}/${n} readers got all`])
    }
    const c = await catchUp(server)
    rows.push([server.name, 'catch-up 100k chars', `median ${c.median.toFixed(1)} ms`])
    const i = await ingest(server)
    rows.push([server.name, 'ingest 5 000 updates', `${i.perSec} updates/s, ${i.cpuUsPerUpdate} µs CPU/update (${i.got} delivered)`])
  } finally {
    server.child.kill('SIGKILL')
  }
}
fs.rmSync(dir, { recursive: true, force: true })
console.log('| server | scenario | result |\n|---|---|---|')
for (const r of rows) console.log(`| ${r.join(' | ')} |`)
process.exit(0)
