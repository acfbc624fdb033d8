import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

// architecture.md's arrows, held for every folder: http and sync use mirror; mirror uses upstream and
// storage; everything may use oci, config, observability and concurrency; oci uses nothing. Each
// folder lists the folders and the packages it may import; node: built-ins are free except in oci,
// which stays pure.
const SRC = path.resolve(import.meta.dirname, '../src');
const COMMON = ['oci', 'config', 'observability', 'concurrency'];

const RULES: Record<string, { folders: string[]; packages: RegExp }> = {
  oci: { folders: [], packages: /^node:crypto$/ },
  // Small primitives (in-flight coalescing) every folder shares: they know nothing of the others.
  concurrency: { folders: [], packages: /^node:.*$/ },
  config: { folders: ['oci'], packages: /^(node:(fs\/promises|path)|semver|cron-parser)$/ },
  observability: { folders: [...COMMON, 'mirror', 'upstream'], packages: /^(node:.*|pino|pino-pretty|prom-client)$/ },
  upstream: { folders: COMMON, packages: /^(node:.*|undici)$/ },
  storage: { folders: COMMON, packages: /^(node:.*|keyv|@keyv\/redis)$/ },
  mirror: { folders: [...COMMON, 'upstream', 'storage'], packages: /^(node:.*|lru-cache|pino)$/ },
  // Every byte sync fetches goes through the cache policy: no upstream or storage, no HTTP client.
  sync: { folders: [...COMMON, 'mirror'], packages: /^(node:.*|semver|cron-parser|pino)$/ },
  admin: { folders: [...COMMON, 'storage'], packages: /^node:.*$/ },
  http: { folders: [...COMMON, 'mirror', 'storage', 'upstream'], packages: /^(node:.*|pino)$/ },
  cli: { folders: [...COMMON, 'admin', 'storage', 'sync', 'mirror'], packages: /^(node:.*|commander)$/ },
};

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
  const folders = new Set(readdirSync(SRC).filter((f) => statSync(path.join(SRC, f)).isDirectory()));
  t.same([...folders].sort(), Object.keys(RULES).sort(), 'every folder has a rule (a new one needs its arrows stated here)');
  for (const file of all) {
    const rel = path.relative(SRC, file);
    const folder = rel.includes(path.sep) ? rel.split(path.sep)[0]! : undefined;
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
      // Resolved, so a file in a subfolder (admin/commands/) is held to its top folder's rule.
      const targetRel = path.relative(SRC, path.resolve(path.dirname(file), spec));
      // Only the entry points build an App.
      if (targetRel === 'app.js') {
        t.equal(folder, 'cli', `${rel} may import the composition root`);
        continue;
      }
      const target = targetRel.split(path.sep)[0]!;
      if (target !== folder) t.ok(rule.folders.includes(target), `${rel} may import ${spec}`);
    }
  }
});
