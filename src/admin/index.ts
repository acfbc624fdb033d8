export { CacheAdmin, PIN_SOURCES, repoMatcher, type CacheAdminDeps } from './cache-admin.js';
export { FileBlobRemover, type BlobRemover } from './blob-remover.js';
export { pinnedInSnapshot, type PinnedBlobs } from './pinned-blobs.js';
export { listImages, type CachedImage, type ImageListDeps } from './image-list.js';
export { createAdminSocketServer, type AdminRoutes } from './admin-socket.js';
export {
  ADMIN_COMMANDS,
  CACHE_COMMAND_TABLE,
  parseCommand,
  runCommand,
  TOKEN_COMMAND_TABLE,
  TOKEN_COMMANDS,
  UsageError,
  type AdminCommandSpec,
  type AdminRequest,
  type CliOption,
  type CommandTable,
} from './commands/index.js';
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
export type { GcResult, Holder, LsRequest, LsResult, LsTag, PruneRequest, PruneResult, VerifyResult } from './protocol.js';
