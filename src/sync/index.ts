export { describeSchedule, SyncService, type EntryState, type RunOptions, type StartOutcome, type SyncServiceOptions } from './service.js';
export { RateLimitLedger, ReserveReachedError } from './rate-limit.js';
export { entryRepositories, selectEntries, syncPinPatterns } from './entry-patterns.js';
export { realTimers, nextSlot, type Timers } from './scheduler.js';
export { onlyExact, selectTags, tagVersion } from './tags.js';
export { platformSelected } from './walk.js';
export type { EntryResult, ImageResult, NoteLevel, SyncProgress, SyncRunResult } from './types.js';
export { SYNC_ADMIN_PATH, syncAdminRoutes, type SyncRouteDeps, type SyncStreamEvent } from './admin-route.js';
