export { Mirror } from './mirror.js';
export type { MirrorOptions, TagsReply } from './mirror.js';
export type { BlobReply } from './blobs.js';
export type { ManifestReply } from './manifests.js';
export type { CacheOutcome, MirrorObserver } from './observer.js';
export { noopObserver } from './observer.js';
export type { RepoRef } from './types.js';
export { PinSet } from './pins.js';
export { ManifestReferences, type ReferenceSink } from './references.js';
