export type { Config, MetadataConfig, UpstreamConfig } from './types.js';
export { ConfigError, loadConfigFile, parseConfig } from './load.js';
export type { ConfigOverrides } from './load.js';
export { redactRedisUrl } from './metadata.js';
export { parseDuration, parseSize } from './units.js';
