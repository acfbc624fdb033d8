export { createHttpServer } from './server.js';
export type { HttpServerOptions } from './server.js';
export { toErrorAnswer } from './errors.js';
export { createOpsServer, type OpsServerOptions } from './ops-server.js';
export type { OpsEndpoints, OpsRoute } from './ops-routes.js';
export { Readiness, type Degraded, type ReadinessCheck, type ReadinessOptions, type ReadyResult } from './health.js';
export { TokenEndpoint, type CanRead, type TokenEndpointOptions } from './token-route.js';
