export type { AccessConfig, AccessRule, AuditConfig, AuthConfig, Config, PolicyRule, MetadataConfig, OnlineUpstreamConfig, RepositoryPattern, TlsConfig, UpstreamConfig } from './types.js';
export { ConfigError, ConfigErrors, loadConfigFile, parseConfig } from './load.js';
export type { ConfigOverrides } from './load.js';
export { redactRedisUrl } from './metadata.js';
export { parseRepositoryPatterns } from './repositories.js';
export { formatBytes, formatSizeLike, formatTime, parseDuration, parseSize, type SpaceFloor } from './units.js';
export { NO_SYNC, parseSchedule, type Schedule, type SyncConfig, type SyncEntry, type TagFilter } from './sync.js';
export type { ClusterConfig } from './cluster.js';
