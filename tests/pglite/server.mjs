// PostgreSQL compiled to WebAssembly (PGlite) with pgvector, served on the wire protocol for the tests of
// MLNet.Align.Search's PostgreSQL backend. Usage: node server.mjs [port]  (or PGLITE_PORT; 0 = any free port).
// Prints one line "PGLITE READY port=<port> vector=<extversion>" when it accepts connections; stops on SIGTERM/SIGINT
// or when its stdin closes (so a killed test host never leaves it behind).
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

const port = Number(process.argv[2] ?? process.env.PGLITE_PORT ?? 0);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PGLITE ERROR bad port '${process.argv[2] ?? process.env.PGLITE_PORT}'`);
  process.exit(2);
}

const db = await PGlite.create({ extensions: { vector } });
await db.exec('CREATE EXTENSION IF NOT EXISTS vector;');
const { rows } = await db.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'");
// PGlite is one backend; the socket server queues statements and, while one client holds a transaction, runs only
// that client's. Several sockets are allowed because a closed one is released asynchronously: with a limit of one, a
// client reconnecting at once is refused ("Too many connections").
const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: 16 });
await server.start();
const bound = server.getServerConn().split(':').pop();
console.log(`PGLITE READY port=${bound} vector=${rows[0]?.extversion ?? 'none'}`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  try { await server.stop(); await db.close(); } finally { process.exit(0); }
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
