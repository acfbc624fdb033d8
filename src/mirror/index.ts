export { Mirror } from './mirror.js';
export type { MirrorOptions, TagsReply } from './mirror.js';
export type { BlobReply } from './blobs.js';
export type { ManifestReply } from './manifests.js';
export type { CacheOutcome, MirrorObserver } from './observer.js';
export { noopObserver } from './observer.js';
export type { RepoRef } from './types.js';
// Mirror calls fail with the upstream's own typed errors; sync tells retryable ones apart by them.
export { UpstreamError } from '../upstream/index.js';
export { PinSet } from './pins.js';
export { ManifestReferences, type ManifestReferencesOptions, type ReferenceSink } from './references.js';
