import { formatBytes } from '../../config/index.js';
import type { GcResult } from '../protocol.js';
import type { AdminCommandSpec } from './command.js';

export const gc: AdminCommandSpec<{ readonly command: 'gc' }, GcResult> = {
  name: 'gc',
  description: 'delete blobs and manifests no cached tag references, and orphaned temp files',
  options: [],
  fromCli: () => ({ command: 'gc' }),
  parse: () => ({ command: 'gc' }),
  run: (admin) => admin.gc({ dryRun: false }),
  format(result) {
    const verb = result.dryRun ? 'would free' : 'freed';
    const lines = result.blobs.map((b) => `${result.dryRun ? 'would delete' : 'deleted'} ${b.digest} (${formatBytes(b.size)})`);
    lines.push(
      `${verb} ${result.blobs.length} blobs (${formatBytes(result.bytes)}), ${result.metadataRecords} metadata records, ${result.tempFiles} temp files (${formatBytes(result.tempBytes)})`,
    );
    return lines.join('\n');
  },
};
