import t from 'tap';
import path from 'node:path';
import { parseDigest } from '../../src/oci/index.js';
import { blobPath, newProbePath, newTempPath, storageLayout } from '../../src/storage/layout.js';

// The tree a released build writes is a contract with every cache on disk: these literals change
// only together with a migration at start (and the upgrade test's fixture).
t.test('the v1 tree, spelled out', async (t) => {
  const root = '/srv/regmirror';
  const layout = storageLayout(root);
  t.same(layout, {
    root,
    base: '/srv/regmirror/v1',
    blobsDir: '/srv/regmirror/v1/blobs',
    tmpDir: '/srv/regmirror/v1/tmp',
    indexSnapshot: '/srv/regmirror/v1/cache-index.json',
    metadataLog: '/srv/regmirror/v1/metadata.log',
    adminSocket: '/srv/regmirror/v1/admin.sock',
    // Added later, optional: a storage without it has no import pins (no migration needed).
    pins: '/srv/regmirror/v1/pins.json',
    // Added later, transient: only while an `import -` runs (nothing to migrate).
    incomingDir: '/srv/regmirror/v1/incoming',
  });
  const hex = 'ab'.repeat(32);
  t.equal(blobPath(layout, parseDigest(`sha256:${hex}`)), `/srv/regmirror/v1/blobs/sha256/ab/${hex}`);
  t.equal(blobPath(layout, parseDigest(`sha512:${'cd'.repeat(64)}`)), `/srv/regmirror/v1/blobs/sha512/cd/${'cd'.repeat(64)}`);
});

t.test('temp and probe names: unique, in tmp/, told apart by their first character', async (t) => {
  const layout = storageLayout('/r');
  const digest = parseDigest(`sha256:${'12'.repeat(32)}`);
  const a = newTempPath(layout, digest);
  const b = newTempPath(layout, digest);
  t.not(a, b, 'two writers of one digest never share a file');
  t.equal(path.dirname(a), '/r/v1/tmp');
  t.match(path.basename(a), new RegExp(`^${'12'.repeat(32)}\\.[0-9a-f]{12}$`));
  const probe = newProbePath(layout);
  t.equal(path.dirname(probe), '/r/v1/tmp');
  t.match(path.basename(probe), /^\.probe-[0-9a-f]{12}$/);
});
