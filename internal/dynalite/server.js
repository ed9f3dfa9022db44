'use strict'
// Starts dynalite (in memory) on 127.0.0.1 with a port the kernel picks, and prints
// one line, {"port":N}, on stdout once it is listening. The Go helper in this folder
// embeds and runs this file; by hand, from the repository root after `npm ci`:
//
//   node internal/dynalite/server.js
//
// DYNALITE_MODULE: path of node_modules/dynalite (default: resolve "dynalite").
// DYNALITE_OPTIONS: JSON merged over the defaults below (dynalite's own option names).
//
// It exits when its stdin closes, so it cannot outlive the Go test that started it,
// even one killed with SIGKILL; SIGTERM and SIGINT end it too.

const major = Number(process.versions.node.split('.')[0])
if (major < 20) {
  console.error(`dynalite 4 needs Node.js >= 20; this is ${process.version}`)
  process.exit(3)
}

const dynalite = require(process.env.DYNALITE_MODULE || 'dynalite')
const options = Object.assign(
  // Tables become ACTIVE (and DELETING tables vanish) on the next tick, not after 500 ms.
  { createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 },
  JSON.parse(process.env.DYNALITE_OPTIONS || '{}'),
)
delete options.path // in memory only (memory-level): no LevelDB files on disk

// dynalite rethrows a request's 'error' event (index.js: req.on('error',
// function (err) { throw err })), so a client that hangs up mid-request, as
// a bot process does when it is stopped, would crash the whole server; real
// DynamoDB only loses that request. Such an error ends that request alone.
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error(`dynalite: a client hung up mid-request (${err.message}); serving on`)
    return
  }
  console.error((err && err.stack) || String(err))
  process.exit(1)
})

const server = dynalite(options)
server.on('error', (err) => {
  console.error(err.stack || String(err))
  process.exit(1)
})
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')
})

process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()
for (const signal of [ 'SIGTERM', 'SIGINT' ]) process.on(signal, () => process.exit(0))
