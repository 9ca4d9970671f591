// The results table of bench.mjs: one row per figure, one column per server,
// and weft ÷ the best peer (below 1× = weft better; for "delivered/s",
// above 1× = weft better). Given several runs (OUT=… JSON files), each cell
// is the median over the runs that have it:
//   node table.mjs run1.json run2.json run3.json
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'

export const NAMES = { weft: 'weft-relay', yws: 'y-websocket-server', hocuspocus: 'Hocuspocus', ysweet: 'y-sweet' }

function median (xs) {
  const s = [...xs].sort((a, b) => a - b)
  if (!s.length) return undefined
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export function table (runs) {
  const cfg = runs[0].cfg
  const rows = []
  const row = (label, key, get, { d = 1, higher = false, ratio = true } = {}) => rows.push({ label, key, get, d, higher, ratio })
  for (const n of cfg.fanout) {
    row(`fan-out 1→${n}, 100 upd/s: p50 ms`, `fanout-${n}`, (v) => v.p50)
    row(`fan-out 1→${n}: p99 ms`, `fanout-${n}`, (v) => v.p99)
    row(`fan-out 1→${n}: server CPU s (sends + delivery)`, `fanout-${n}`, (v) => v.cpuS, { d: 2 })
    row(`fan-out 1→${n}: lost (of ${n * cfg.fanoutUpdates}; not received 10 s after the last send)`, `fanout-${n}`, (v) => v.lost, { d: 0, ratio: false })
  }
  for (const r of cfg.rates) {
    const k = `rooms-${r}`
    row(`${cfg.rooms} rooms × 2, ${r} upd/s: p50 ms`, k, (v) => v.p50)
    row(`${cfg.rooms} rooms, ${r} upd/s: p99 ms`, k, (v) => v.p99)
    row(`${cfg.rooms} rooms, ${r} upd/s: server CPU %`, k, (v) => v.cpuPct, { d: 0 })
    row(`${cfg.rooms} rooms, ${r} upd/s: lost (not received 5 s after the sends)`, k, (v) => v.lost, { d: 0, ratio: false })
    row(`${cfg.rooms} rooms, ${r} upd/s: sent/s the load tool reached`, k, (v) => v.sentPerSec, { d: 0, ratio: false })
    row(`${cfg.rooms} rooms, ${r} upd/s: load tool CPU %`, k, (v) => v.clientCpuPct, { d: 0, ratio: false })
  }
  const perRoom = cfg.idleRooms && cfg.idleRooms !== cfg.idle ? `in ${cfg.idleRooms} rooms` : 'one room each'
  row(`${cfg.idle} idle sockets, ${perRoom}: connect all, s`, 'idle', (v) => v.connectMs / 1000, { d: 2 })
  row(`${cfg.idle} idle sockets: server RSS KiB/socket`, 'idle', (v) => v.rssPerConnKiB)
  row(`${cfg.idle} idle sockets: failed`, 'idle', (v) => v.failed, { d: 0, ratio: false })
  row(`catch-up ${cfg.catchupChars} chars: connect → applied, ms (median of ${cfg.catchupRuns})`, 'catchup', (v) => v.ms)
  row(`catch-up ${cfg.catchupChars} chars: KiB received`, 'catchup', (v) => v.bytes / 1024)
  row(`ingest ${cfg.ingest} inserts: server CPU s`, 'ingest', (v) => v.cpuS, { d: 2 })
  row(`ingest ${cfg.ingest} inserts: delivered/s`, 'ingest', (v) => v.perSec, { d: 0, higher: true })
  row(`ingest ${cfg.ingest} inserts: lost`, 'ingest', (v) => v.lost, { d: 0, ratio: false })

  const kinds = cfg.servers
  const fmt = (x, d) => (x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d))
  const note = runs.length > 1 ? ` (median of ${runs.length} runs)` : ''
  const lines = [`| scenario${note} | ${kinds.map((k) => NAMES[k]).join(' | ')} | weft ÷ best peer |`, `|---|${kinds.map(() => '---:').join('|')}|---:|`]
  for (const r of rows) {
    const val = (k) => median(runs.map((run) => run.results[r.key] && run.results[r.key][k])
      .filter((v) => v && !v.error).map(r.get).filter((x) => x !== undefined && !Number.isNaN(x)))
    const errored = (k) => runs.every((run) => !run.results[r.key] || !run.results[r.key][k] || run.results[r.key][k].error)
    if (runs.every((run) => !run.results[r.key])) continue
    if (kinds.every((k) => val(k) === undefined) && !kinds.some(errored)) continue // a figure these runs did not record
    const cells = kinds.map((k) => (errored(k) && runs.some((run) => run.results[r.key] && run.results[r.key][k]) ? 'error' : fmt(val(k), r.d)))
    let ratio = '—'
    const peers = kinds.filter((k) => k !== 'weft').map(val).filter((x) => x !== undefined)
    const w = val('weft')
    if (r.ratio && w !== undefined && peers.length) {
      const best = r.higher ? Math.max(...peers) : Math.min(...peers)
      if (best > 0) ratio = `${(w / best).toFixed(2)}×`
    }
    lines.push(`| ${r.label} | ${cells.join(' | ')} | ${ratio} |`)
  }
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const runs = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')))
  if (!runs.length) throw new Error('usage: node table.mjs run.json…')
  console.log(table(runs))
}
