import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Metrics } from '../../src/observability/index.js';
import { parseExposition } from '../fixtures/prometheus.js';

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string }[];
}

t.test('every metric the Grafana dashboard queries is one regmirror exports', async (t) => {
  const dashboard = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../docs/grafana-dashboard.json'), 'utf8')) as { uid: string; panels: Panel[] };
  t.equal(dashboard.uid, 'regmirror-overview');
  const ids = dashboard.panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((x) => x.expr);
  const names = new Set(exprs.flatMap((e) => e.match(/\b(?:regmirror|process|nodejs)_[a-z0-9_]+/g) ?? []));
  const exported = parseExposition((await new Metrics({ perRepository: 1 }).exposition()).body);
  for (const name of names) t.ok(exported.familyOf(name), `${name} exists`);
  // Every panel shows data: a panel whose queries were deleted would pass the per-name check above.
  for (const p of dashboard.panels.filter((p) => p.type !== 'row')) t.ok((p.targets ?? []).length > 0, `${p.title} has a query`);
  for (const topic of ['Hit ratio', 'Bytes saved', 'Upstream errors', 'rate-limit budget', 'Cache fill vs budget', 'Sync']) {
    t.ok(dashboard.panels.some((p) => p.title.includes(topic)), `a panel for ${topic}`);
  }
});
