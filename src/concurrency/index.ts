export { Coalescer } from './coalescer.js';
export { MemoryLeases, whileHeld, type Lease, type Leases } from './leases.js';
export { Limiter } from './limiter.js';
