/**
 * Sizes and times as every command prints them (`sync`, `cache ls`, their `--json`): binary units
 * with one decimal ("76.3 MiB"), ISO 8601 UTC to the second. Defined beside the config's units so
 * the admin commands, which run inside the server too, print them the same way.
 */
export { formatBytes, formatTime } from '../config/index.js';
