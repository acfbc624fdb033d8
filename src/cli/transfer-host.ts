import { App } from '../app.js';
import { callAdmin, describeHolder, openAdmin, type Holder } from '../admin/index.js';
import type { Config } from '../config/index.js';
import { StorageError } from '../storage/index.js';
import { BlobMismatchError, LayoutError, remoteExportSource, remoteImportTarget, TransferError, type ExportSource, type AdminTransport, type ImportTarget, type TransferProgress } from '../transfer/index.js';
import { CliError } from './cli-error.js';
import { TtyProgress } from './sync-progress.js';

export interface StorageSide {
  readonly source: ExportSource;
  readonly target: ImportTarget;
  /** Where the storage work runs, for the summary line. */
  readonly where: string;
}

/**
 * Runs `work` against the storage: inside the serve that holds it (over its admin socket: the
 * server owns the metadata log, its downloads and its pins), or, when nobody does, in this process,
 * which then holds the storage for the run as `regmirror sync` does.
 */
export async function onStorage<T>(config: Config, command: string, work: (side: StorageSide) => Promise<T>): Promise<T> {
  const root = config.storage.path;
  const owner = await callAdmin(root, 'GET', '/v1/owner').catch(() => undefined);
  if (owner !== undefined) {
    const holder = owner.body as Holder;
    if (owner.status !== 200 || holder.kind !== 'serve') throw new CliError(`${command}: storage ${root} is in use by ${describeHolder(holder)}`, 1);
    const transport: AdminTransport = (method, path, body, headers) => openAdmin(root, method, path, body, headers);
    return work({ source: remoteExportSource(transport), target: remoteImportTarget(transport), where: describeHolder(holder) });
  }
  const app = new App(config, { logDestination: process.stderr, command });
  try {
    await app.open();
  } catch (err) {
    await app.close(0);
    throw new CliError(`${command}: ${(err as Error).message}`, 1);
  }
  try {
    return await work({ ...app.transfer, where: 'this process' });
  } finally {
    await app.close(0);
  }
}

/** Bad input is exit 2 (nothing changed), any other failure exit 1: one line either way. */
export function transferCliError(command: string, err: unknown): unknown {
  if (err instanceof CliError) return err;
  if (err instanceof LayoutError || err instanceof BlobMismatchError) return new CliError(`${command}: ${err.message}`, 2);
  if (err instanceof TransferError || err instanceof StorageError) return new CliError(`${command}: ${err.message}`, 1);
  return err instanceof Error ? new CliError(`${command}: ${err.message}`, 1) : err;
}

/** The sync command's bars (one per image, one for bytes), when `out` is a terminal and no --json. */
export function ttyProgress(json: boolean | undefined, out: NodeJS.WriteStream = process.stdout): { progress: TransferProgress | undefined; finish(): void } {
  if (json === true || !out.isTTY) return { progress: undefined, finish: () => {} };
  const tty = new TtyProgress(out);
  return {
    progress: {
      imageStarted: (image, blobs, bytes) => tty.imageStarted(image, image, blobs, bytes),
      blobDone: (image, bytes) => tty.blobDone(image, image, bytes),
      imageFinished: (image, ok) => tty.imageFinished(image, image, ok),
    },
    finish: () => tty.finish(),
  };
}
