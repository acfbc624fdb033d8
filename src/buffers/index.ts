export { SLAB_BYTES, SlabPool, slabs, type SlabReader } from './slab-pool.js';
