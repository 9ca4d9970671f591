// Hocuspocus 3.4.4 as it ships, no extensions (so memory only, no auth
// hook), on 127.0.0.1:PORT. Started by bench.mjs as its own process so its
// CPU and memory can be read from /proc.
import { Server } from '@hocuspocus/server'

const port = Number(process.argv[2])
const server = new Server({ port, address: '127.0.0.1', quiet: true })
await server.listen()
console.log(`hocuspocus listening on 127.0.0.1:${port}`)
