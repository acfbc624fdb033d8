import t from 'tap';
import { createServer, type Server } from 'node:net';
import { registryEndpoint } from '../src/app-config.js';
import { parseConfig } from '../src/config/index.js';

const UPSTREAMS = { upstreams: { 'docker.io': { url: 'https://registry.example' }, 'ghcr.io': { url: 'https://ghcr.example' } }, defaultUpstream: 'docker.io' };

async function listening(t: { teardown(fn: () => unknown): void }): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

t.test('the status page snippets name where nodes pull from', async (t) => {
  const server = await listening(t);
  const port = (server.address() as { port: number }).port;
  const plain = parseConfig({ ...UPSTREAMS, listen: '10.0.0.5:5000' }, { baseDir: '/srv', env: {} });
  t.same(registryEndpoint(plain, server), { scheme: 'http', host: '10.0.0.5', port, defaultUpstream: 'docker.io' }, 'the bound port, the configured host');
  const everywhere = parseConfig({ ...UPSTREAMS, listen: '0.0.0.0:5000' }, { baseDir: '/srv', env: {} });
  t.equal(registryEndpoint(everywhere, server)?.host, null, 'every address: the page uses the host it was loaded from');
  const tls = parseConfig({ ...UPSTREAMS, listen: '0.0.0.0:5000', tls: { cert: 'c.pem', key: 'k.pem', listen: 'mirror.internal:5443' } }, { baseDir: '/srv', env: {} });
  t.same(registryEndpoint(tls, server), { scheme: 'https', host: 'mirror.internal', port, defaultUpstream: 'docker.io' }, 'the HTTPS listener when there is one');
  t.equal(registryEndpoint(plain, createServer()), undefined, 'not listening: nothing to name');
});
