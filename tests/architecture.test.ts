import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

// architecture.md's arrows, held for every folder: http and sync use mirror, http uses access; mirror uses upstream,
// cache and storage; cache (the budget: eviction, pins, recency) uses storage; everything may use oci,
// config, observability, concurrency and buffers; oci uses nothing. Each folder lists the folders and the packages it may
// import; node: built-ins are free except in oci, which stays pure. A nested folder (storage/blobs)
// has a rule of its own, so outside storage/ only its index (the folder `storage`) may be imported.
const SRC = path.resolve(import.meta.dirname, '../src');
const COMMON = ['oci', 'config', 'observability', 'concurrency', 'buffers'];

const RULES: Record<string, { folders: string[]; packages: RegExp }> = {
  oci: { folders: [], packages: /^node:crypto$/ },
  // Small primitives (in-flight coalescing) every folder shares: they know nothing of the others.
  concurrency: { folders: [], packages: /^node:.*$/ },
  // Pooled memory for download bytes: the upstream's socket reads land in it, storage writes and followers hold it.
  buffers: { folders: [], packages: /^node:.*$/ },
  // node:fs and node:crypto: an upstream's `ca`/`clientCert`/`clientKey` are read and checked at load (config is synchronous).
  config: { folders: ['oci'], packages: /^(node:(fs|fs\/promises|path|crypto)|semver|cron-parser)$/ },
  // Metrics implements the observer interfaces their producers define (mirror, upstream, cache).
  observability: { folders: [...COMMON, 'mirror', 'upstream', 'cache', 'policy', 'cluster'], packages: /^(node:.*|pino|prom-client)$/ },
  upstream: { folders: COMMON, packages: /^(node:.*|undici)$/ },
  // Identities: who a credential is (htpasswd users, robot tokens, signed bearer tokens, failure throttling),
  // and the access controller that asks access's read policy about them (so access never learns of credentials).
  // Its files (robot tokens, the signing key) live under the storage root but are its own, not blobs or records.
  auth: { folders: [...COMMON, 'access'], packages: /^(node:.*|jose|bcryptjs|lru-cache)$/ },
  // The server side of access control: decides on resolved repositories, knows no HTTP server or store.
  access: { folders: COMMON, packages: /^node:.*$/ },
  // storage/'s own files: the shared types, errors, layout, health, and the index over both halves.
  storage: { folders: [...COMMON, 'storage/blobs', 'storage/metadata'], packages: /^node:.*$/ },
  // Bytes by digest and records by key know nothing of each other.
  'storage/blobs': { folders: ['oci', 'storage', 'buffers'], packages: /^node:.*$/ },
  'storage/metadata': { folders: ['oci', 'config', 'storage'], packages: /^(node:.*|keyv|@keyv\/redis)$/ },
  cache: { folders: [...COMMON, 'storage'], packages: /^node:.*$/ },
  mirror: { folders: [...COMMON, 'upstream', 'storage', 'cache'], packages: /^(node:.*|lru-cache|pino)$/ },
  // Every byte sync fetches goes through the cache policy: no upstream or storage, no HTTP client.
  sync: { folders: [...COMMON, 'mirror'], packages: /^(node:.*|semver|cron-parser|pino)$/ },
  // Export and import of image layouts: read through the mirror's pull path, write through its ingest;
  // sync lends the platform filter and the entry selection (`--from-sync`). The files are node:fs.
  transfer: { folders: [...COMMON, 'mirror', 'sync', 'storage'], packages: /^node:.*$/ },
  // Admin commands work on the cache directory: they read the cache index for pins.
  admin: { folders: [...COMMON, 'storage', 'cache', 'auth'], packages: /^node:.*$/ },
  // The policy gate: a RegistryReader around the mirror's, deciding what may be served (rules, signatures).
  policy: { folders: [...COMMON, 'mirror'], packages: /^(node:.*|lru-cache|pino)$/ },
  // `regmirror doctor`: probes the upstreams and checks the storage and the pins, before serving.
  doctor: { folders: [...COMMON, 'upstream', 'storage', 'cache'], packages: /^node:.*$/ },
  // Replicas of one mirror: who takes part, who owns a digest, and fetching it from the owner (a BlobRouting for mirror).
  cluster: { folders: [...COMMON, 'mirror'], packages: /^(node:.*|undici)$/ },
  // Serves the cluster's internal endpoint (its signature check and path grammar come from cluster).
  http: { folders: [...COMMON, 'access', 'auth', 'mirror', 'storage', 'upstream', 'cluster'], packages: /^(node:.*|pino)$/ },
  cli: { folders: [...COMMON, 'admin', 'auth', 'storage', 'cache', 'sync', 'mirror', 'transfer', 'doctor'], packages: /^(node:.*|commander|koffi)$/ },
};

/** The rule a file or folder falls under: its deepest folder that has one (undefined for src/ itself). */
function ruleOf(relDir: string): string | undefined {
  for (let dir = relDir; dir !== '' && dir !== '.'; dir = path.dirname(dir)) {
    if (RULES[dir.split(path.sep).join('/')]) return dir.split(path.sep).join('/');
  }
  return undefined;
}

/** A file that grows past this has two responsibilities; split it. */
const MAX_LINES = 350;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : name.endsWith('.ts') ? [p] : [];
  });
}

t.test('every folder of src/ imports only what the architecture allows', async (t) => {
  const all = files(SRC);
  t.ok(all.length > 50, `read ${all.length} files`);
  const folders = new Set(
    all.map((f) => path.relative(SRC, path.dirname(f)).split(path.sep).join('/')).filter((d) => d !== ''),
  );
  // A subfolder without a rule of its own (admin/commands) is held to its parent's.
  t.same([...folders].filter((d) => ruleOf(d) === undefined).sort(), [], 'every folder has a rule (a new one needs its arrows stated here)');
  for (const file of all) {
    const rel = path.relative(SRC, file);
    const folder = ruleOf(path.dirname(rel));
    const text = readFileSync(file, 'utf8');
    t.ok(text.split('\n').length <= MAX_LINES, `${rel} stays within ${MAX_LINES} lines`);
    const rule = folder === undefined ? undefined : RULES[folder];
    if (rule === undefined) continue; // app.ts, the composition root, builds everything
    for (const m of text.matchAll(/^(?:import|export)[^'"]*from '([^']+)'/gm)) {
      const spec = m[1]!;
      if (!spec.startsWith('.')) {
        t.match(spec, rule.packages, `${rel} may import ${spec}`);
        continue;
      }
      const target = path.relative(SRC, path.resolve(path.dirname(file), spec));
      // Only the entry points build an App.
      if (target === 'app.js') {
        t.equal(folder, 'cli', `${rel} may import the composition root`);
        continue;
      }
      const targetRule = ruleOf(path.dirname(target));
      if (targetRule === folder) continue;
      t.ok(targetRule !== undefined && rule.folders.includes(targetRule), `${rel} may import ${spec}`);
    }
  }
});
