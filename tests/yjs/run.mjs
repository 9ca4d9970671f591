// Real `yjs` + `y-websocket` clients against weft-relay's Yjs rooms.
//
// Run by crates/relay/tests/yjs_clients.rs (which passes the relay binary in
// WEFT_RELAY_BIN); by hand: WEFT_RELAY_BIN=target/debug/weft-relay node tests/yjs/run.mjs
// Every wait is bounded; a failed check exits non-zero with the reason.
import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const BIN = process.env.WEFT_RELAY_BIN
if (!BIN) throw new Error('WEFT_RELAY_BIN is not set')
const SECRET = 'yjs-test-secret-of-at-least-thirty-two-bytes'
const T0 = Date.now()
const log = (...a) => console.log(`[${((Date.now() - T0) / 1000).toFixed(1)}s]`, ...a)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function check (cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`)
}

async function waitFor (what, cond, ms = 10000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await cond()) return
    await sleep(25)
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`)
}

// HS256 JWT, the claims weft-relay's auth.rs reads.
function token (docs, write, sub = 'test') {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url')
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, docs, write, exp: Math.floor(Date.now() / 1000) + 3600 })}`
  const sig = crypto.createHmac('sha256', SECRET).update(body).digest('base64url')
  return `${body}.${sig}`
}
const WRITE = token(['*'], true, 'writer')
const READ = token(['*'], false, 'reader')

// --- the relay -------------------------------------------------------------

const relays = []
async function startRelay (dataDir, env = {}) {
  const child = spawn(BIN, ['--listen', '127.0.0.1:0', '--data', dataDir], {
    env: { ...process.env, WEFT_JWT_SECRET: SECRET, RUST_LOG: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  relays.push(child)
  const addr = await new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error('relay did not start within 10 s')), 10000)
    child.stdout.on('data', (chunk) => {
      out += chunk
      const m = out.match(/weft-relay listening on (\S+)/)
      if (m) { clearTimeout(timer); resolve(m[1]) }
    })
    child.on('exit', (code) => reject(new Error(`relay exited with ${code}`)))
  })
  child.stdout.resume()
  return { child, addr, url: `ws://${addr}/yjs`, http: `http://${addr}` }
}

async function kill9 (relay) {
  const exited = new Promise((resolve) => relay.child.once('exit', resolve))
  relay.child.kill('SIGKILL')
  await exited
}

// --- clients ---------------------------------------------------------------

const providers = []
function client (url, room, tok = WRITE, opts = {}) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url, room, doc, {
    WebSocketPolyfill: WebSocket,
    params: { token: tok },
    disableBc: true,
    maxBackoffTime: 300,
    ...opts
  })
  providers.push(provider)
  return { doc, provider, awareness: provider.awareness }
}

const synced = (c) => c.provider.wsconnected && c.provider.synced

const CHARS = ['a', 'b', 'z', ' ', '\n', 'é', '世', '界', '漢', '字', '한', '🎉', '👩‍💻', '🇯🇵', 'ñ']
function randomText (rand, n) {
  let s = ''
  for (let i = 0; i < n; i++) s += CHARS[Math.floor(rand() * CHARS.length)]
  return s
}

function seeded (seed) {
  let x = seed >>> 0 || 1
  return () => { x ^= x << 13; x >>>= 0; x ^= x >> 17; x ^= x << 5; x >>>= 0; return x / 4294967296 }
}

// One random edit on text, map, array or XML fragment.
function randomEdit (c, rand) {
  const d = c.doc
  const which = Math.floor(rand() * 4)
  d.transact(() => {
    if (which === 0) {
      const t = d.getText('text')
      if (t.length > 0 && rand() < 0.3) {
        const at = Math.floor(rand() * t.length)
        t.delete(at, Math.min(1 + Math.floor(rand() * 3), t.length - at))
      } else {
        t.insert(Math.floor(rand() * (t.length + 1)), randomText(rand, 1 + Math.floor(rand() * 4)))
      }
    } else if (which === 1) {
      const m = d.getMap('map')
      const key = `k${Math.floor(rand() * 8)}`
      if (rand() < 0.2) m.delete(key)
      else m.set(key, rand() < 0.5 ? randomText(rand, 3) : { n: Math.floor(rand() * 1000), s: randomText(rand, 2), a: [1, 'x'] })
    } else if (which === 2) {
      const a = d.getArray('array')
      if (a.length > 0 && rand() < 0.3) a.delete(Math.floor(rand() * a.length), 1)
      else a.insert(Math.floor(rand() * (a.length + 1)), [randomText(rand, 2), Math.floor(rand() * 100)])
    } else {
      const x = d.getXmlFragment('xml')
      if (x.length > 0 && rand() < 0.25) {
        x.delete(Math.floor(rand() * x.length), 1)
      } else {
        const el = new Y.XmlElement(rand() < 0.5 ? 'p' : 'h1')
        el.setAttribute('data-x', randomText(rand, 2))
        el.insert(0, [new Y.XmlText(randomText(rand, 3))])
        x.insert(Math.floor(rand() * (x.length + 1)), [el])
      }
    }
  })
}

// JSON with sorted keys: a Y.Map's toJSON() lists keys in local insertion order.
function canonical (v) {
  if (Array.isArray(v)) return v.map(canonical)
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]))
  return v
}

function content (d) {
  return JSON.stringify(canonical({
    text: d.getText('text').toString(),
    map: d.getMap('map').toJSON(),
    array: d.getArray('array').toJSON(),
    xml: d.getXmlFragment('xml').toString()
  }))
}
const svOf = (d) => Buffer.from(Y.encodeStateVector(d)).toString('base64')
// State vector and delete set together.
const snapOf = (d) => Buffer.from(Y.encodeSnapshot(Y.snapshot(d))).toString('base64')

async function converged (clients, what, ms = 15000) {
  try {
    await convergedInner(clients, what, ms)
  } catch (e) {
    for (const c of clients) {
      console.error(`client ${c.doc.clientID}: connected=${c.provider.wsconnected} synced=${c.provider.synced} sv=${JSON.stringify([...Y.decodeStateVector(Y.encodeStateVector(c.doc))])} text=${c.doc.getText('text').length} snap=${snapOf(c.doc) === snapOf(clients[0].doc)} content=${content(c.doc) === content(clients[0].doc)}`)
    }
    throw e
  }
}

async function convergedInner (clients, what, ms) {
  await waitFor(what, () => {
    if (!clients.every(synced)) return false
    const s = snapOf(clients[0].doc)
    const c = content(clients[0].doc)
    return clients.every((x) => snapOf(x.doc) === s && content(x.doc) === c)
  }, ms)
}

async function httpState (relay, room, tok = READ) {
  const r = await fetch(`${relay.http}/v1/yjs/${room}/update`, { headers: { authorization: `Bearer ${tok}` } })
  if (r.status === 404) return null
  check(r.status === 200, `GET update: ${r.status}`)
  const d = new Y.Doc()
  Y.applyUpdate(d, new Uint8Array(await r.arrayBuffer()))
  return d
}

function dropAbruptly (c) {
  // No close frame: the TCP connection just goes away.
  c.provider.shouldConnect = false
  c.provider.ws?._socket?.destroy()
}

async function metric (relay, name) {
  const text = await (await fetch(`${relay.http}/metrics`)).text()
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith(name)) sum += Number(line.split(' ').pop())
  }
  return sum
}

// --- scenarios -------------------------------------------------------------

async function convergence (relay) {
  const room = 'converge'
  const rand = seeded(42)
  const clients = Array.from({ length: 6 }, () => client(relay.url, room))
  await waitFor('6 clients synced', () => clients.every(synced))
  const end = Date.now() + 5000
  let round = 0
  while (Date.now() < end && round < 2000) {
    round++
    for (const c of clients) if (rand() < 0.7) randomEdit(c, rand)
    if (round % 40 === 10) {
      // One drops abruptly, one leaves cleanly; both edit offline.
      dropAbruptly(clients[1])
      clients[2].provider.disconnect()
    }
    if (round % 40 === 30) {
      clients[1].provider.connect()
      clients[2].provider.connect()
    }
    await sleep(10)
  }
  for (const c of clients) c.provider.connect()
  const late = client(relay.url, room)
  clients.push(late)
  await converged(clients, 'random edits to converge')
  const server = await httpState(relay, room)
  check(server && snapOf(server) === snapOf(clients[0].doc), 'the HTTP state equals the clients\'')
  check(content(server) === content(clients[0].doc), 'HTTP content')
  const text = clients[0].doc.getText('text').toString()
  check(text.length > 100, `text grew (${text.length})`)
  log(`convergence: ${round} rounds, 7 clients, ${text.length} UTF-16 units of text, state equal`)
  for (const c of clients) c.provider.destroy()
}

async function awareness (relay) {
  const room = 'awareness'
  const clients = Array.from({ length: 4 }, (_, i) => client(relay.url, room))
  clients.forEach((c, i) => c.awareness.setLocalStateField('user', { name: `u${i}`, color: '#0a0' }))
  const names = (c) => [...c.awareness.getStates().values()].map((s) => s.user?.name).filter(Boolean).sort().join(',')
  await waitFor('all see 4 users', () => clients.every((c) => names(c) === 'u0,u1,u2,u3'))
  dropAbruptly(clients[3])
  await waitFor('a dropped client disappears for the others', () =>
    clients.slice(0, 3).every((c) => names(c) === 'u0,u1,u2'))
  clients[3].provider.connect()
  await waitFor('after reconnect all see 4 users again', () => clients.every((c) => names(c) === 'u0,u1,u2,u3'))
  // A clean reconnect of everyone, one after the other.
  for (const c of clients) { c.provider.disconnect(); c.provider.connect() }
  await waitFor('after every client reconnected all see 4 users', () => clients.every((c) => synced(c) && names(c) === 'u0,u1,u2,u3'))
  // An update from a closed client's last breath: cleanly destroyed → null.
  clients[0].provider.destroy()
  await waitFor('a destroyed provider is gone for the others', () => clients.slice(1).every((c) => names(c) === 'u1,u2,u3'))
  log('awareness: seen by all, removed on drop, back after reconnects')
  for (const c of clients.slice(1)) c.provider.destroy()
}

async function readOnly (relay) {
  const room = 'readonly'
  const writer = client(relay.url, room, WRITE)
  const reader = client(relay.url, room, READ)
  await waitFor('both synced', () => synced(writer) && synced(reader))
  writer.doc.getText('text').insert(0, 'from the writer 世界')
  await waitFor('reader sees the writer', () => reader.doc.getText('text').toString() === 'from the writer 世界')
  reader.doc.getText('text').insert(0, 'READER ')
  reader.doc.getMap('map').set('evil', 1)
  await sleep(1000)
  check(!writer.doc.getText('text').toString().includes('READER'), 'a read-only edit reached the writer')
  check(writer.doc.getMap('map').get('evil') === undefined, 'a read-only map edit reached the writer')
  const late = client(relay.url, room, WRITE)
  await waitFor('late writer synced', () => synced(late))
  check(late.doc.getText('text').toString() === 'from the writer 世界', 'the server kept a read-only edit')
  check(reader.provider.wsconnected, 'the reader stays connected')
  const r = await fetch(`${relay.http}/v1/yjs/${room}/update`, {
    method: 'POST', headers: { authorization: `Bearer ${READ}` }, body: Y.encodeStateAsUpdate(reader.doc)
  })
  check(r.status === 403, `read-only POST: ${r.status}`)
  const anon = await fetch(`${relay.http}/v1/yjs/${room}/update`)
  check(anon.status === 401, `anonymous GET: ${anon.status}`)
  // Server-side code posts an update over HTTP; connected clients get it.
  const side = new Y.Doc()
  Y.applyUpdate(side, Y.encodeStateAsUpdate(late.doc))
  side.getText('text').insert(0, '[server] ')
  const p = await fetch(`${relay.http}/v1/yjs/${room}/update`, {
    method: 'POST', headers: { authorization: `Bearer ${WRITE}` }, body: Y.encodeStateAsUpdate(side, Y.encodeStateVector(late.doc))
  })
  check(p.status === 204, `POST: ${p.status}`)
  await waitFor('an HTTP update reaches the clients', () => writer.doc.getText('text').toString().startsWith('[server] '))
  const bad = await fetch(`${relay.http}/v1/yjs/${room}/update`, {
    method: 'POST', headers: { authorization: `Bearer ${WRITE}` }, body: new Uint8Array([255, 255, 255, 255, 15])
  })
  check(bad.status === 400, `malformed POST: ${bad.status}`)
  log('read-only: edits refused, reader kept reading; HTTP GET/POST authenticated')
  for (const c of [writer, reader, late]) c.provider.destroy()
}

async function slowReader (relay) {
  const room = 'slow'
  const writer = client(relay.url, room)
  const slow = client(relay.url, room)
  await waitFor('both synced', () => synced(writer) && synced(slow))
  let disconnected = 0
  slow.provider.on('status', (e) => { if (e.status === 'disconnected') disconnected++ })
  const before = await metric(relay, 'weft_relay_yjs_resyncs_total')
  // The slow client stops reading its socket; the writer sends ~3 MB.
  slow.provider.ws._socket.pause()
  const chunk = 'x'.repeat(4000) + '世界🎉'
  for (let i = 0; i < 750; i++) {
    writer.doc.getText('text').insert(0, chunk)
    if (i % 50 === 0) await sleep(5)
  }
  await sleep(1500)
  slow.provider.ws._socket.resume()
  await converged([writer, slow], 'the slow reader to catch up', 30000)
  const after = await metric(relay, 'weft_relay_yjs_resyncs_total')
  check(after > before, `the slow reader was resynced (resyncs ${before} → ${after})`)
  check(disconnected === 0, 'the slow reader was not disconnected')
  log(`slow reader: caught up by ${after - before} resync(s), never disconnected`)
  for (const c of [writer, slow]) c.provider.destroy()
}

async function crash (dataDir) {
  let relay = await startRelay(dataDir)
  const room = 'crash'
  const rand = seeded(7)
  const clients = Array.from({ length: 4 }, () => client(relay.url, room))
  await waitFor('4 clients synced', () => clients.every(synced))
  const end = Date.now() + 2500
  while (Date.now() < end) {
    for (const c of clients) randomEdit(c, rand)
    await sleep(5)
  }
  // Kill mid-editing: the edits keep coming while the relay dies.
  const killing = kill9(relay)
  for (const c of clients) randomEdit(c, rand)
  await killing
  for (const c of clients) c.provider.disconnect()
  // What each client had seen from the *others* must be on disk.
  const seen = new Map()
  for (const c of clients) {
    for (const [client, clock] of Y.decodeStateVector(Y.encodeStateVector(c.doc))) {
      if (client === c.doc.clientID) continue
      seen.set(client, Math.max(seen.get(client) ?? 0, clock))
    }
  }
  relay = await startRelay(dataDir)
  const server = await httpState(relay, room)
  check(server !== null, 'the document survived')
  const have = Y.decodeStateVector(Y.encodeStateVector(server))
  for (const [client, clock] of seen) {
    check((have.get(client) ?? 0) >= clock, `client ${client}: seen up to ${clock} by another client, relay has ${have.get(client) ?? 0}`)
  }
  for (const c of clients) { c.provider.serverUrl = relay.url; c.provider.connect() }
  await converged(clients, 'convergence after the restart', 20000)
  log(`crash: SIGKILL mid-editing lost nothing any client had seen (${seen.size} clients checked); all converged after restart`)
  for (const c of clients) c.provider.destroy()
  return relay
}

async function main () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-yjs-'))
  try {
    const relay = await startRelay(path.join(dir, 'a'), { WEFT_OUTBOUND_QUEUE_BYTES: String(64 * 1024) })
    log(`relay on ${relay.addr}`)
    await convergence(relay)
    await awareness(relay)
    await readOnly(relay)
    await slowReader(relay)
    await crash(path.join(dir, 'b'))
    log('all Yjs scenarios passed')
  } finally {
    for (const p of providers) { try { p.destroy() } catch {} }
    for (const r of relays) { try { r.kill('SIGKILL') } catch {} }
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const deadline = setTimeout(() => { console.error('the suite took longer than 120 s'); process.exit(2) }, 120000)
main().then(() => { clearTimeout(deadline); process.exit(0) }, (e) => {
  console.error(e.stack || String(e))
  process.exit(1)
})
