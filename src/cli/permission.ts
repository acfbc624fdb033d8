import { currentUser } from '../doctor/index.js';
import { errorCode } from '../observability/index.js';

const DENIED: ReadonlySet<string> = new Set(['EACCES', 'EPERM']);

/**
 * What an operator needs from a permission error inside the storage: which directory (the one they
 * configured, not a file or socket the mirror keeps inside it) and which user the process runs as.
 * Undefined for any other error.
 */
export function storagePermissionMessage(err: unknown, root: string): string | undefined {
  // A port below 1024 refused to a non-root user is EACCES too, and no business of the storage.
  if (!inside(root, failedPath(err))) return undefined;
  const code = errorCode(err);
  if (code === 'EROFS') return `storage ${root} is on a read-only file system (EROFS)`;
  if (code === undefined || !DENIED.has(code)) return undefined;
  return `storage ${root} is not writable by user ${currentUser()} (${code})`;
}

/**
 * The admin socket refused us: it belongs to a server running as another user (the socket is 0600).
 * Said in terms of the storage, which the operator configured, rather than of the socket inside it.
 */
export function heldByAnotherUserMessage(err: unknown, root: string): string | undefined {
  const code = errorCode(err);
  if (code === undefined || !DENIED.has(code)) return undefined;
  return `storage ${root} is in use by a server running as another user, and user ${currentUser()} may not reach it (${code}): run this command as the user the server runs as`;
}

/** The file a system error names (`path`, or `address` for a Unix socket), on the error or its cause. */
function failedPath(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; typeof e === 'object' && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const { path, address } = e as { path?: unknown; address?: unknown };
    if (typeof path === 'string') return path;
    if (typeof address === 'string') return address;
  }
  return undefined;
}

function inside(root: string, file: string | undefined): boolean {
  return file !== undefined && (file === root || file.startsWith(root.endsWith('/') ? root : `${root}/`));
}
