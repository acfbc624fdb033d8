import t from 'tap';
import { readdirSync, readlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fanOutAccepts } from '../../src/http/accept-fan.js';
import { quickImage, sha256 } from '../fixtures/images.js';
import { startTestRegistry } from '../fixtures/test-registry.js';
import { startMirror } from '../fixtures/mirror.js';
import { request } from '../fixtures/http.js';
import type { TeardownHost } from '../fixtures/teardown.js';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

/** Descriptors of this process open on the socket behind `fd` (its inode). */
function descriptorsOf(fd: number): number {
  const target = readlinkSync(`/proc/self/fd/${fd}`);
  return readdirSync('/proc/self/fd').filter((n) => {
    try {
      return readlinkSync(`/proc/self/fd/${n}`) === target;
    } catch {
      return false;
    }
  }).length;
}

function listening(t: TeardownHost): Promise<{ server: Server; url: string; fd: number }> {
  const server = createServer((req, res) => res.end(`served ${req.url}`));
  t.teardown(() => {
    server.close();
    server.closeAllConnections();
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, fd });
    });
  });
}

t.test('the extra handles are descriptors of the same socket, and each accepts and hands its connections to the server', async (t) => {
  const { server, url, fd } = await listening(t);
  const failures: Error[] = [];
  const fan = await fanOutAccepts(server, 3, (e) => failures.push(e));
  t.equal(fan.extra, 3);
  t.same(failures, []);
  t.equal(descriptorsOf(fd), 4, 'the listening socket has three more descriptors here');

  // With the server's own handle closed, only the extra ones can accept: they still serve.
  server.close();
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => request(`${url}/x${i}`)));
  t.same(
    answers.map((a) => a.body.toString()),
    Array.from({ length: 20 }, (_, i) => `served /x${i}`),
  );

  await fan.close();
  await t.rejects(request(`${url}/after`), { code: 'ECONNREFUSED' }, 'closing the fan closes the port');
});

t.test('a helper that cannot hand back handles leaves the server with its own, and says why', async (t) => {
  const { server, url, fd } = await listening(t);
  const failures: Error[] = [];
  const fan = await fanOutAccepts(server, 2, (e) => failures.push(e), 'process.exit(3)');
  t.equal(fan.extra, 0);
  t.match(failures[0]?.message, /exited \(3\) after 0 of 2 handles/);
  t.equal(descriptorsOf(fd), 1);
  t.equal((await request(`${url}/ok`)).body.toString(), 'served /ok');
  await fan.close();

  const notListening = createServer();
  t.equal((await fanOutAccepts(notListening, 2, (e) => failures.push(e))).extra, 0, 'nothing to copy before listen');
  t.equal(failures.length, 1);
});

t.test('a mirror with extra accept handles serves new connections through them and closes them with its listener', async (t) => {
  const reg = await startTestRegistry(t);
  const img = quickImage('accept-fan');
  reg.pushImage('team/app', '1', img);
  const mirror = await startMirror(t, { upstreams: { 'docker.io': { url: reg.url } }, extraAcceptHandles: 4 });
  t.notOk(mirror.logs.some((l) => l.includes('no extra accept handles')));

  const manifests = await Promise.all(Array.from({ length: 30 }, () => request(`${mirror.url}/v2/team/app/manifests/1`, { headers: { accept: ACCEPT, connection: 'close' } })));
  t.same(
    manifests.map((m) => m.status),
    manifests.map(() => 200),
  );
  t.ok(manifests.every((m) => m.body.equals(img.manifest)));
  const layer = img.layers[0]!;
  t.equal(sha256((await request(`${mirror.url}/v2/team/app/blobs/${layer.digest}`)).body), layer.digest);

  await mirror.close();
  await t.rejects(request(`${mirror.url}/v2/`), { code: 'ECONNREFUSED' }, 'no handle is left listening after close');
});
