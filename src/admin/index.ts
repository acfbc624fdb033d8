export { CacheAdmin, repoMatcher, type CacheAdminDeps } from './cache-admin.js';
export { FileBlobRemover, type BlobRemover } from './blob-remover.js';
export { pinnedInSnapshot, type PinnedBlobs } from './pinned-blobs.js';
export { callAdmin, createAdminSocketServer, describeHolder, runCommand, type AdminReply } from './admin-socket.js';
export { holdStorage, releaseStorage, whoHolds } from './hold.js';
export { acquireStorage, adminSocketPath, isLive } from './storage-lock.js';
export type { AdminCommand, GcResult, Holder, LsResult, PruneRequest, PruneResult, VerifyResult } from './protocol.js';
