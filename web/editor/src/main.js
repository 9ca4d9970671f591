// The collaborative editor weft-relay serves at `/`: CodeMirror 6 bound to
// a Yjs text through y-codemirror.next, synced by the stock y-websocket
// provider against the relay's Yjs rooms (`/yjs/{doc}`).
//
// URL parameters: `doc` (document id, default "welcome"), `token` (a
// weft token, when the relay checks them), `name` (shown at your cursor).
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { yCollab } from 'y-codemirror.next'
import { EditorView, basicSetup } from 'codemirror'
import { EditorState } from '@codemirror/state'

const COLORS = [
  ['#d7263d', '#d7263d33'], ['#1b998b', '#1b998b33'], ['#2e86ab', '#2e86ab33'],
  ['#f46036', '#f4603633'], ['#7b2cbf', '#7b2cbf33'], ['#3a7d44', '#3a7d4433']
]

const params = new URLSearchParams(location.search)
const docId = params.get('doc') || 'welcome'
const token = params.get('token')
const [color, colorLight] = COLORS[Math.floor(Math.random() * COLORS.length)]
const name = params.get('name') || `guest-${Math.floor(Math.random() * 1000)}`

const ydoc = new Y.Doc()
const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
const provider = new WebsocketProvider(`${scheme}//${location.host}/yjs`, docId, ydoc, {
  params: token ? { token } : {}
})
provider.awareness.setLocalStateField('user', { name, color, colorLight })

const ytext = ydoc.getText('codemirror')
const view = new EditorView({
  state: EditorState.create({
    doc: ytext.toString(),
    extensions: [basicSetup, EditorView.lineWrapping, yCollab(ytext, provider.awareness)]
  }),
  parent: document.querySelector('#editor')
})

const status = document.querySelector('#status')
const peers = document.querySelector('#peers')
function showStatus () {
  const state = provider.wsconnected ? (provider.synced ? 'synced' : 'syncing') : 'offline'
  status.textContent = state
  status.dataset.state = state
}
provider.on('status', showStatus)
provider.on('sync', showStatus)
showStatus()

function showPeers () {
  peers.replaceChildren()
  for (const [id, state] of provider.awareness.getStates()) {
    if (!state.user) continue
    const chip = document.createElement('span')
    chip.className = 'peer'
    chip.style.background = state.user.color
    chip.textContent = id === ydoc.clientID ? `${state.user.name} (you)` : state.user.name
    peers.append(chip)
  }
}
provider.awareness.on('change', showPeers)
showPeers()
document.querySelector('#doc').textContent = docId

// For tests and the console.
window.weft = { ydoc, provider, view, ytext }
