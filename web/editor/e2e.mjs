// End-to-end: two Chromium pages type into one document through weft-relay;
// both must show the same text and each other's cursor. Run by
// crates/relay/tests/editor_browser.rs with WEFT_RELAY_BIN and WEFT_SCREENSHOT.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { chromium } from 'playwright-core'

const BIN = process.env.WEFT_RELAY_BIN
const SHOT = process.env.WEFT_SCREENSHOT || 'editor-e2e.png'
if (!BIN) throw new Error('WEFT_RELAY_BIN is not set')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function waitFor (what, cond, ms = 15000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await cond()) return
    await sleep(50)
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`)
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'weft-editor-'))
const relay = spawn(BIN, ['--listen', '127.0.0.1:0', '--data', dir, '--insecure-no-auth'], {
  env: { ...process.env, RUST_LOG: 'warn' },
  stdio: ['ignore', 'pipe', 'inherit']
})
let browser
try {
  const addr = await new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error('relay did not start')), 10000)
    relay.stdout.on('data', (c) => {
      out += c
      const m = out.match(/weft-relay listening on (\S+)/)
      if (m) { clearTimeout(timer); resolve(m[1]) }
    })
  })
  relay.stdout.resume()
  // A fresh profile (--user-data-dir) each run.
  const context = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(os.tmpdir(), 'weft-chromium-')), {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 900, height: 500 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  })
  browser = context
  const open = async (name) => {
    const page = await context.newPage()
    page.on('pageerror', (e) => console.error(`${name}: page error: ${e.message}`))
    await page.goto(`http://${addr}/?doc=e2e&name=${name}`)
    await page.waitForSelector('#status[data-state="synced"]', { timeout: 15000 })
    return page
  }
  const alice = await open('alice')
  const bob = await open('bob')
  // What each editor shows: CodeMirror's document (the DOM also holds the
  // remote cursors' name labels).
  const text = (page) => page.evaluate(() => window.weft.view.state.doc.toString())
  await alice.click('.cm-content')
  await alice.keyboard.type('Hello from Alice 世界 🎉\n')
  await waitFor('bob to see alice', async () => (await text(bob)).includes('Hello from Alice'))
  await bob.click('.cm-content')
  await bob.keyboard.press('Control+End')
  await bob.keyboard.type('and Bob was here ✍')
  await alice.click('.cm-content')
  await alice.keyboard.press('Control+Home')
  await waitFor('the same text on both pages', async () => {
    const [a, b] = [await text(alice), await text(bob)]
    return a === b && a.includes('Hello from Alice 世界 🎉') && a.includes('and Bob was here ✍')
  })
  // Each page shows the other's cursor, labelled with the other's name.
  const carets = (page) => page.evaluate(() =>
    [...document.querySelectorAll('.cm-ySelectionCaret')].map((c) => c.textContent).join('|'))
  await waitFor('alice to show bob\'s cursor', async () => (await carets(alice)).includes('bob'))
  await waitFor('bob to show alice\'s cursor', async () => (await carets(bob)).includes('alice'))
  const peers = await alice.evaluate(() => document.querySelector('#peers').innerText)
  if (!peers.includes('bob')) throw new Error(`peers: ${peers}`)
  await alice.screenshot({ path: SHOT })
  console.log(`editor e2e: both pages show "${(await text(alice)).replace(/\n/g, '\\n')}" and each other's cursor; screenshot ${SHOT}`)
} finally {
  if (browser) await browser.close()
  relay.kill('SIGKILL')
  fs.rmSync(dir, { recursive: true, force: true })
}
process.exit(0)
