export { OCI_ERROR_STATUS, OciError, ociErrorBody, quoteInput, type OciErrorCode, type OciErrorOptions } from './errors.js';
export { computeDigest, digestAlgorithm, digestHex, isDigestString, parseDigest, type Digest, type DigestAlgorithm } from './digest.js';
export {
  MAX_NAME_LENGTH,
  officialName,
  parseReference,
  parseRepositoryName,
  parseTag,
  referenceString,
  type Reference,
  type RepositoryName,
  type Tag,
} from './names.js';
export {
  acceptsMediaType,
  isIndexMediaType,
  MANIFEST_MEDIA_TYPES,
  MAX_MANIFEST_BYTES,
  MediaType,
  parseAccept,
  stripMediaTypeParams,
} from './media-types.js';
export { childDescriptors, parseManifest, type Descriptor, type ParsedManifest, type Platform } from './manifest.js';
export {
  ManifestGraphTooDeepError,
  walkManifestGraph,
  type ManifestGraph,
  type ManifestGraphRoot,
  type WalkOptions,
} from './manifest-graph.js';
export { contentRange, parseRange, unsatisfiedContentRange, type RangeRequest } from './range.js';
export {
  MAX_LAST_LENGTH,
  MAX_PAGE_SIZE,
  parseRequest,
  parseRoute,
  resolveRoute,
  resolveTarget,
  type ParsedRequest,
  type RepoTarget,
  type Route,
  type RouteContext,
} from './route.js';
export { FIRST_PAGE, nextPageFromLink, pageOf, tagsListLink, type PageQuery } from './pagination.js';
export { catalogLink, catalogName, type CatalogView } from './catalog.js';
export { RepositoryFilter, RepositoryGlob, RepositoryGlobError } from './repository-glob.js';
export {
  COSIGN_FALLBACK_TAGS,
  fallbackTag,
  referrerWanted,
  MAX_REFERRERS_PAGE_LENGTH,
  nextReferrersPage,
  parseReferrersIndex,
  referrersIndex,
  referrersLink,
  type ReferrerDescriptor,
} from './referrers.js';
