// tap compiles its Test class with the plugins listed under "tap" in package.json, and rebuilds it
// when that list changed only once a run has started, after the runner chose the loaders of that
// run's test processes: the first `npm test` after `npm ci` would still load every file through
// ts-node as well. Rebuild here, before tap starts, and only when the lists differ (a build costs
// ~10 s of CPU).
import { spawnSync } from 'node:child_process';
import { TapConfig } from '@tapjs/config';
import { signature } from '@tapjs/test';

const config = await TapConfig.load();
if (config.pluginSignature !== signature) {
  const built = spawnSync('npx', ['tap', 'build'], { stdio: 'inherit' });
  process.exit(built.status ?? 1);
}
