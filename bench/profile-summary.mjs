// node bench/profile-summary.mjs FILE.cpuprofile [--top N]
// Top self-time functions and a breakdown by area (regmirror code, node internals, dependencies,
// GC) from a `node --cpu-prof` profile, so a bench finding can name where the CPU went.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
if (positionals.length === 0) {
  process.stderr.write('usage: profile-summary.mjs FILE.cpuprofile... [--top N]\n');
  process.exit(2);
}

function area(url, name) {
  if (name.startsWith('(')) return name; // (garbage collector), (program), (idle), (root)
  if (url === '') return '(native)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`;
  const dep = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dep) return dep[1];
  const own = /\/dist\/(.*)$/.exec(url);
  return own ? `regmirror ${own[1].split('/')[0]}` : url;
}

for (const file of positionals) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const fns = new Map();
  const areas = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const name = functionName || '(anonymous)';
    if (name === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    const short = url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^file:\/\//, '');
    const key = `${name}  ${short}${url ? `:${lineNumber + 1}` : ''}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const a = area(url, name);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
  const ms = (us) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  process.stdout.write(`\n${file}\nbusy ${ms(total)}, idle ${ms(idle)}\n\nby area (self time):\n`);
  for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, 15)) process.stdout.write(`  ${pct(us)} ${ms(us)}  ${a}\n`);
  process.stdout.write(`\ntop ${values.top} functions (self time):\n`);
  for (const [k, us] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, Number(values.top))) process.stdout.write(`  ${pct(us)} ${ms(us)}  ${k}\n`);
}
