export { CacheAdmin, repoMatcher, type CacheAdminDeps } from './cache-admin.js';
export { FileBlobRemover, type BlobRemover } from './blob-remover.js';
export { pinnedInSnapshot, type PinnedBlobs } from './pinned-blobs.js';
export { createAdminSocketServer, type AdminRoutes } from './admin-socket.js';
export { ADMIN_COMMANDS, parseCommand, runCommand, UsageError, type AdminCommandSpec, type AdminRequest, type CliOption } from './commands/index.js';
export {
  adminSocketPath,
  callAdmin,
  describeHolder,
  describeStorageHolder,
  holdStorage,
  isLive,
  openAdmin,
  releaseStorage,
  tryHoldStorage,
  type AdminReply,
  type AdminStream,
} from './storage-owner.js';
export type { GcResult, Holder, LsResult, PruneRequest, PruneResult, VerifyResult } from './protocol.js';
