// The bench's raw Yjs clients, shared by bench.mjs and worker.mjs: one
// client logic for every server, only the framing differs.
//
// - weft-relay, y-websocket-server, y-sweet: plain y-protocols messages
//   (`[type][sub][varbytes]`), one document per WebSocket, named by the URL.
// - Hocuspocus: every message is prefixed by the document name as a lib0
//   varstring, and a document is opened by an Auth message
//   (`[name][2 = Auth][0 = Token][varstring token]`) before anything else.
//
// A client counts as joined when the server answered its SyncStep1 with a
// SyncStep2 (what every y-websocket provider does on open), so "connected"
// means the server has loaded the room and served its state.
import WebSocket from 'ws'
import * as Y from 'yjs'

/** Milliseconds since the epoch with sub-ms precision, comparable across worker threads. */
export const nowMs = () => performance.timeOrigin + performance.now()
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export function varuint (n) {
  const out = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return Buffer.from(out)
}

function readVarUint (buf, pos) {
  let n = 0
  let mul = 1
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varuint')
    const b = buf[pos++]
    n += (b & 0x7f) * mul
    if (b < 0x80) return [n, pos]
    mul *= 128
    if (mul > 2 ** 49) throw new Error('varuint too long')
  }
}

const varString = (s) => { const b = Buffer.from(s, 'utf8'); return Buffer.concat([varuint(b.length), b]) }
export const syncMessage = (sub, body) => Buffer.concat([Buffer.from([0, sub]), varuint(body.length), Buffer.from(body)])
const EMPTY_SV = Y.encodeStateVector(new Y.Doc())

/** How to reach one server: `{ kind, base }`, base = `ws://127.0.0.1:PORT`. */
export function roomUrl (server, room) {
  switch (server.kind) {
    case 'weft': return `${server.base}/yjs/${room}`
    case 'ysweet': return `${server.base}/d/${room}/ws/${room}`
    default: return `${server.base}/${room}`
  }
}

/** Wraps one y-protocols message in the server's framing. */
export function frame (server, room, msg) {
  return server.kind === 'hocuspocus' ? Buffer.concat([varString(room), msg]) : msg
}

/** The y-protocols message inside one received frame. */
function unframe (server, buf) {
  if (server.kind !== 'hocuspocus') return buf
  const [len, pos] = readVarUint(buf, 0)
  return buf.subarray(pos + len)
}

/** The payload of a sync message `[0][sub][varbytes]` (sub < 128). */
function syncPayload (m) {
  const [len, pos] = readVarUint(m, 2)
  return m.subarray(pos, pos + len)
}

/**
 * Opens one client on `room`. Resolves with the WebSocket once joined
 * (SyncStep2 received; `onStep2(payload)` sees it), rejects on error or after
 * `timeoutMs`. `onUpdate(payload)` gets every later sync Update, `onBytes(n)`
 * every received message's size.
 */
export function open (server, room, { onUpdate, onStep2, onBytes, timeoutMs = 30000 } = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(roomUrl(server, room), { perMessageDeflate: false })
    ws.binaryType = 'nodebuffer'
    let joined = false
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`join of ${room} timed out`)) }, timeoutMs)
    ws.on('message', (buf) => {
      if (onBytes) onBytes(buf.length)
      let m
      try { m = unframe(server, buf) } catch { return }
      if (m.length < 2 || m[0] !== 0) return
      if (m[1] === 1 && !joined) {
        joined = true
        clearTimeout(timer)
        if (onStep2) onStep2(syncPayload(m))
        resolve(ws)
      } else if (m[1] === 2 && onUpdate) {
        onUpdate(syncPayload(m))
      }
    })
    ws.once('open', () => {
      if (server.kind === 'hocuspocus') ws.send(frame(server, room, Buffer.from([2, 0, 0]))) // Auth, Token, "" (no auth hook)
      ws.send(frame(server, room, syncMessage(0, EMPTY_SV)))
    })
    ws.once('error', (e) => { clearTimeout(timer); if (!joined) reject(e) })
    ws.once('close', () => { clearTimeout(timer); if (!joined) reject(new Error(`${room} closed before join`)) })
  })
}

/** The writer clocks `[from, to)` one received update carries (one writer per room). */
export function clocks (payload) {
  const meta = Y.parseUpdateMeta(payload)
  for (const [client, from] of meta.from) return [client, from, meta.to.get(client)]
  return null
}

/** `n` single-character inserts appended to one text, update k carrying clock k. */
export function pregen (n) {
  const doc = new Y.Doc()
  const out = []
  doc.on('update', (u) => out.push(u))
  const t = doc.getText('t')
  for (let k = 0; k < n; k++) t.insert(k, 'x')
  return { client: doc.clientID, updates: out }
}

/** Runs `fn(i)` for i < n with at most `width` in flight; returns the failures. */
export async function pool (n, width, fn) {
  let next = 0
  let failed = 0
  let firstError = null
  await Promise.all(Array.from({ length: Math.min(width, n) }, async () => {
    while (next < n) {
      const i = next++
      try { await fn(i) } catch (e) { failed++; firstError ??= e }
    }
  }))
  return { failed, firstError: firstError && String(firstError.message || firstError) }
}
