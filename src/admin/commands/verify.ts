import { formatBytes } from '../../config/index.js';
import type { VerifyResult } from '../protocol.js';
import type { AdminCommandSpec } from './command.js';

export const verify: AdminCommandSpec<{ readonly command: 'verify'; readonly fix: boolean }, VerifyResult> = {
  name: 'verify',
  description: 're-hash every blob; exit 1 if any is corrupt',
  options: [{ flags: '--fix', description: 'delete corrupt blobs (a later pull fetches them again)' }],
  fromCli: (o) => ({ command: 'verify', fix: o['fix'] === true }),
  parse: (v) => ({ command: 'verify', fix: v['fix'] === true }),
  run: (admin, request) => admin.verify(request.fix),
  format(result) {
    const lines = result.corrupt.map((c) => `corrupt ${c.digest} (${formatBytes(c.size)})${c.removed ? ': deleted' : ''}`);
    const removed = result.corrupt.filter((c) => c.removed).length;
    lines.push(
      `checked ${result.checked} blobs (${formatBytes(result.bytes)}): ${result.corrupt.length === 0 ? 'all intact' : `${result.corrupt.length} corrupt${removed > 0 ? `, ${removed} deleted` : ' (run with --fix to delete them)'}`}`,
    );
    return lines.join('\n');
  },
  failed: (result) => result.corrupt.length > 0,
};
