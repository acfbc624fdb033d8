import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

// architecture.md: sync uses mirror (and oci, config, observability); never upstream or storage directly,
// so every byte it fetches goes through the cache policy.
const DIR = path.resolve(import.meta.dirname, '../../src/sync');
const ALLOWED = /^(\.\/|\.\.\/(mirror|config|observability|oci)\/|node:|cron-parser$|semver$|pino$)/;

t.test('src/sync imports only what the architecture allows', async (t) => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.ts'));
  t.ok(files.length > 5);
  for (const file of files) {
    const text = readFileSync(path.join(DIR, file), 'utf8');
    for (const m of text.matchAll(/^(?:import|export)[^'"]*from '([^']+)'/gm)) {
      t.match(m[1], ALLOWED, `${file} imports ${m[1]}`);
    }
    t.ok(text.split('\n').length < 300, `${file} stays under 300 lines`);
  }
});
