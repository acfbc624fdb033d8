import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

export interface FileWatchOptions {
  /** The fallback: `changed` runs this often whatever the watcher says (default 2 s). */
  readonly pollMs?: number;
  /** Events closer together than this make one call (an editor's truncate-then-write; default 100 ms). */
  readonly debounceMs?: number;
}

export interface FileWatch {
  close(): void;
}

/**
 * Calls `changed` soon after `file` may have changed; `changed` must find out whether it did (it is
 * also called when nothing changed). The directory is watched, not the file: a mounted Kubernetes
 * Secret changes by swapping its `..data` symlink, so the file's own inode never sees an event. The
 * periodic call covers filesystems where watching says nothing (NFS, some overlays) or fails.
 */
export function watchFile(file: string, changed: () => void, options: FileWatchOptions = {}): FileWatch {
  const { pollMs = 2000, debounceMs = 100 } = options;
  let pending: NodeJS.Timeout | undefined;
  const soon = (): void => {
    if (pending !== undefined) return;
    pending = setTimeout(() => {
      pending = undefined;
      changed();
    }, debounceMs);
    pending.unref();
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(path.dirname(file), { persistent: false }, soon);
    // The directory went away or the watch limit was hit: polling alone from here on.
    watcher.on('error', () => watcher?.close());
  } catch {
    watcher = undefined;
  }
  const poll = setInterval(changed, pollMs);
  poll.unref();
  return {
    close() {
      watcher?.close();
      clearInterval(poll);
      clearTimeout(pending);
    },
  };
}
