export { createLogger } from './logger.js';
export type { Logger } from './logger.js';
export { errorCode, errorSummary } from './error-summary.js';
export { Metrics, OTHER_REPOSITORY_LABEL, type MetricsOptions } from './metrics.js';
export type { HttpObserver, SyncObserver, SyncRunReport } from './observers.js';
export { statusSnapshot, type StatusOptions, type StatusSnapshot, type StorageStatus, type StatusUpstreamInfo } from './status.js';
export type { UpstreamState } from './status-tracker.js';
export { noopAudit, type AuditDecision, type AuditEvent, type AuditSink } from './audit.js';
