export { Coalescer } from './coalescer.js';
