export { CacheAdmin, repoMatcher, type CacheAdminDeps } from './cache-admin.js';
export { FileBlobRemover, type BlobRemover } from './blob-remover.js';
export { pinnedInSnapshot, type PinnedBlobs } from './pinned-blobs.js';
export { createAdminSocketServer, runCommand } from './admin-socket.js';
export {
  adminSocketPath,
  callAdmin,
  describeHolder,
  describeStorageHolder,
  holdStorage,
  isLive,
  releaseStorage,
  tryHoldStorage,
  type AdminReply,
} from './storage-owner.js';
export type { AdminCommand, GcResult, Holder, LsResult, PruneRequest, PruneResult, VerifyResult } from './protocol.js';
