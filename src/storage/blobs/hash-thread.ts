import { Worker } from 'node:worker_threads';
import { digestAlgorithm, digestHex, type Digest } from '../../oci/index.js';
import { slabs } from '../../buffers/index.js';
import { DigestMismatchError, SizeMismatchError, StorageError } from '../errors.js';
import type { Verifier } from './verifier.js';

/**
 * The worker's whole program. Plain JavaScript run with `eval`, so the same code runs from the
 * compiled build and under the test loader, which a worker file would not. It answers every
 * message, in order: null for bytes hashed (or a job dropped), the hex digest for a finish, or
 * `{ error }`.
 */
const PROGRAM = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
// id -> its Hash, or the message of the error that broke it (its finish then reports that).
const jobs = new Map();
parentPort.on('message', ([op, id, alg, parts]) => {
  if (op === 'd') { jobs.delete(id); return parentPort.postMessage(null); }
  let job = jobs.get(id);
  try {
    if (job === undefined) { job = createHash(alg); jobs.set(id, job); }
    if (op === 'u') { if (typeof job !== 'string') for (const p of parts) job.update(p); return parentPort.postMessage(null); }
    jobs.delete(id);
    parentPort.postMessage(typeof job === 'string' ? { error: job } : job.digest('hex'));
  } catch (error) {
    const message = String((error && error.message) || error);
    if (op === 'u') { jobs.set(id, message); parentPort.postMessage(null); }
    else { jobs.delete(id); parentPort.postMessage({ error: message }); }
  }
});
`;

/**
 * Unhashed bytes past which writers wait (`room`), and down to which they then wait. Memory stays
 * bounded while the worker lags, and a writer does not stall each time the worker thread is not
 * scheduled for a moment (waiting at half of an 8 MiB ring cost 1.46-1.97× a cold GET;
 * BENCHMARKS.md, "Hashing off the main thread").
 */
const BACKLOG_HIGH = 32 * 1024 * 1024;
const BACKLOG_LOW = 16 * 1024 * 1024;
/**
 * A batch is posted once it holds this much (and the rest at finish): a message and its answer
 * cost 15-19 µs of CPU, and a post per loop turn would be thousands per 512 MiB blob.
 */
const POST_BYTES = 1024 * 1024;
/** An idle worker is stopped, so an idle server does not keep its isolate's memory. */
const IDLE_STOP_MS = 10_000;

/** Chunks gathered for one post: slab views (each referenced until hashed) and copies of anything else. */
interface Batch {
  readonly views: Buffer[];
  readonly parts: Uint8Array[];
  readonly transfer: ArrayBuffer[];
  bytes: number;
}

const emptyBatch = (): Batch => ({ views: [], parts: [], transfer: [], bytes: 0 });

/** What the worker's next answer settles: bytes to let go, or a finish's verdict. */
type Pending = { readonly views: Buffer[]; readonly bytes: number } | { readonly settle: (answer: unknown) => void };

/**
 * One worker thread that hashes for every download of the process. Slabs (buffers/) live in
 * SharedArrayBuffers, so a chunk reaches the worker as a view of the same memory: the main thread
 * posts a few offsets per batch instead of hashing 512 MiB itself (0.40-0.44 s per cold GET), and
 * holds a reference on each view until the worker is done with it. Anything else is copied.
 */
class HashThread {
  readonly #worker: Worker;
  readonly #pending: Pending[] = [];
  #backlog = 0;
  #roomWaiters: (() => void)[] = [];
  #open = 0;
  #nextId = 0;
  #idle: NodeJS.Timeout | undefined;
  #stopped: Error | undefined;

  constructor(readonly onStop: (thread: HashThread) => void) {
    this.#worker = new Worker(PROGRAM, { eval: true });
    this.#worker.unref();
    this.#worker.on('message', (answer: unknown) => this.#answer(answer));
    this.#worker.on('error', (error) => this.#stop(new StorageError('the hashing thread failed', { cause: error })));
    this.#worker.on('exit', (code) => this.#stop(new StorageError(`the hashing thread exited (code ${code})`)));
  }

  /** A job id; the job must end in finish() or drop(). */
  open(): number {
    this.#open += 1;
    clearTimeout(this.#idle);
    return this.#nextId++;
  }

  update(id: number, alg: string, batch: Batch): void {
    if (this.#stopped !== undefined) {
      for (const view of batch.views) slabs.release(view);
      return;
    }
    this.#backlog += batch.bytes;
    this.#post(['u', id, alg, batch.parts], { views: batch.views, bytes: batch.bytes }, batch.transfer);
  }

  finish(id: number, alg: string): Promise<string> {
    return this.#ask(['f', id, alg]).finally(() => this.#close());
  }

  drop(id: number): void {
    this.#ask(['d', id]).then(() => this.#close(), () => this.#close());
  }

  /** Resolves once the unhashed bytes are down to the low mark; undefined when below the high one. */
  room(): Promise<void> | undefined {
    if (this.#backlog <= BACKLOG_HIGH || this.#stopped !== undefined) return undefined;
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /** Stops the thread now: what it was hashing fails (StorageError), never passes. */
  async terminate(): Promise<void> {
    this.#stop(new StorageError('the hashing thread was stopped'));
    await this.#worker.terminate();
  }

  #ask(message: unknown[]): Promise<string> {
    if (this.#stopped !== undefined) return Promise.reject(this.#stopped);
    return new Promise((resolve, reject) => {
      this.#post(message, {
        settle: (answer) => {
          if (answer instanceof Error) reject(answer);
          else if (typeof answer === 'string' || answer === null) resolve(answer ?? '');
          else reject(new StorageError(`hashing failed: ${String((answer as { error?: unknown }).error)}`));
        },
      });
    });
  }

  #post(message: unknown[], pending: Pending, transfer: ArrayBuffer[] = []): void {
    // Referenced only while an answer is due, so neither an idle thread nor an open job keeps the process up.
    if (this.#pending.length === 0) this.#worker.ref();
    this.#pending.push(pending);
    this.#worker.postMessage(message, transfer);
  }

  #answer(answer: unknown): void {
    const pending = this.#pending.shift();
    if (pending === undefined) return;
    if (this.#pending.length === 0) this.#worker.unref();
    if ('settle' in pending) return pending.settle(answer);
    for (const view of pending.views) slabs.release(view);
    this.#backlog -= pending.bytes;
    if (this.#backlog <= BACKLOG_LOW) this.#wakeWriters();
  }

  #close(): void {
    this.#open -= 1;
    if (this.#open > 0 || this.#stopped !== undefined) return;
    this.#idle = setTimeout(() => {
      // Detached first: a download starting from now on gets a new thread, never this ending one.
      this.#stop(new StorageError('the hashing thread was stopped while idle'));
      void this.#worker.terminate();
    }, IDLE_STOP_MS).unref();
  }

  #stop(reason: StorageError): void {
    if (this.#stopped !== undefined) return;
    this.#stopped = reason;
    clearTimeout(this.#idle);
    this.onStop(this);
    for (const pending of this.#pending.splice(0)) {
      if ('settle' in pending) pending.settle(reason);
      else for (const view of pending.views) slabs.release(view);
    }
    this.#backlog = 0;
    this.#wakeWriters();
  }

  #wakeWriters(): void {
    for (const wake of this.#roomWaiters.splice(0)) wake();
  }
}

let current: HashThread | undefined;

/** The process's hashing thread, started on first use and again after it stopped. */
function hashThread(): HashThread {
  current ??= new HashThread((stopped) => {
    if (current === stopped) current = undefined;
  });
  return current;
}

/** Stops the process's hashing thread, if one runs (a later download starts a new one). */
export async function stopHashThread(): Promise<void> {
  await current?.terminate();
}

/**
 * Hashes on the process's worker thread. Chunks of one loop turn go in one message; a chunk that
 * is a slab view stays referenced until hashed, so the caller may release its own reference at once.
 */
export class ThreadVerifier implements Verifier {
  readonly #thread = hashThread();
  readonly #id = this.#thread.open();
  readonly #alg: string;
  #batch = emptyBatch();
  #bytes = 0;
  #ended = false;

  constructor(
    readonly digest: Digest,
    readonly expectedSize: number | undefined,
  ) {
    this.#alg = digestAlgorithm(digest);
  }

  update(chunk: Buffer): void {
    if (this.#ended) throw new StorageError(`the verifier of ${this.digest} already finished`);
    this.#bytes += chunk.length;
    if (chunk.length === 0) return;
    const batch = this.#batch;
    batch.bytes += chunk.length;
    // Held or copied now: the caller may let its reference go (and a slab be reused) before the batch is posted.
    if (chunk.buffer instanceof SharedArrayBuffer) {
      slabs.retain(chunk);
      batch.views.push(chunk);
      batch.parts.push(chunk);
    } else {
      // Cloning a view would copy its whole backing store: an exact copy is moved instead.
      const copy = new Uint8Array(chunk);
      batch.parts.push(copy);
      batch.transfer.push(copy.buffer);
    }
    if (batch.bytes >= POST_BYTES) this.#send();
  }

  room(): Promise<void> | undefined {
    return this.#thread.room();
  }

  async finish(): Promise<void> {
    if (this.#ended) throw new StorageError(`the verifier of ${this.digest} already finished`);
    this.#send();
    this.#ended = true;
    const actual = await this.#thread.finish(this.#id, this.#alg);
    if (this.expectedSize !== undefined && this.#bytes !== this.expectedSize) throw new SizeMismatchError(this.expectedSize, this.#bytes);
    if (actual !== digestHex(this.digest)) throw new DigestMismatchError(this.digest, `${this.#alg}:${actual}`);
  }

  discard(): void {
    if (this.#ended) return;
    this.#ended = true;
    for (const view of this.#batch.views) slabs.release(view);
    this.#batch = emptyBatch();
    this.#thread.drop(this.#id);
  }

  #send(): void {
    if (this.#batch.bytes === 0 || this.#ended) return;
    const batch = this.#batch;
    this.#batch = emptyBatch();
    this.#thread.update(this.#id, this.#alg, batch);
  }
}
