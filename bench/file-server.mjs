// The machine's limit for a warm blob: a plain Node HTTP server streaming one file with large
// reads (1 MiB, the size regmirror uses), nothing else on the path.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { pipeline } from 'node:stream';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: file-server.mjs FILE\n');
  process.exit(2);
}
const size = statSync(file).size;
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  if (req.method === 'HEAD') return void res.end();
  pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), res, () => {});
});
server.listen(0, '127.0.0.1', () => {
  const { address, port } = server.address();
  process.stdout.write(`listening ${address}:${port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
