export { createHttpServer } from './server.js';
export type { HttpServerOptions } from './server.js';
export { toErrorAnswer } from './errors.js';
