import type { Command } from 'commander';
import { TOKEN_COMMAND_TABLE, UsageError } from '../admin/index.js';
import { RobotTokens } from '../auth/index.js';
import { createLogger } from '../observability/index.js';
import { registerAdminGroup } from './admin-group.js';

/** `regmirror token create|ls|revoke`: robot tokens, through a running serve (which owns the token file) or on the storage directly. */
export function registerTokenCommands(program: Command): void {
  registerAdminGroup(program, {
    name: 'token',
    description: 'create, list and revoke robot tokens for CI and nodes (safe while serve runs)',
    table: TOKEN_COMMAND_TABLE,
    socketPath: '/v1/token',
    async open(root, config) {
      // A token's read patterns name upstreams: they are checked against the configured ones.
      if (config === undefined) throw new UsageError('needs the config: token read patterns name its upstreams (give --config FILE)');
      // Warnings only (a stored pattern whose upstream left the config), on stderr: stdout is the result.
      const logger = createLogger('warn', { write: (line: string) => void process.stderr.write(line) });
      const target = new RobotTokens({ storageRoot: root, upstreams: config.upstreams, logger });
      await target.load();
      return { target, close: () => target.close() };
    },
  });
}
