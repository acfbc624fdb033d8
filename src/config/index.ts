export type { Config, RepositoryPattern, UpstreamConfig } from './types.js';
export { ConfigError, loadConfigFile, parseConfig } from './load.js';
export type { ConfigOverrides } from './load.js';
export { parseDuration, parseSize } from './units.js';
