export { SyncService, type RunOptions, type SyncServiceOptions } from './service.js';
export { RateLimitLedger, ReserveReachedError } from './rate-limit.js';
export { entryRepositories, selectEntries, syncPinPatterns } from './entry-patterns.js';
export { realTimers, nextSlot, type Timers } from './scheduler.js';
export { onlyExact, selectTags, tagVersion } from './tags.js';
export { platformSelected } from './walk.js';
export type { EntryResult, ImageResult, SyncProgress, SyncRunResult } from './types.js';
