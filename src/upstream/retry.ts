import { setTimeout as sleep } from 'node:timers/promises';
import { errorCode } from '../observability/index.js';

/*
 * Failures where the request most likely never reached upstream's application, or a fresh
 * connection will do better: refused/reset connections, a pooled keep-alive socket that upstream
 * closed under us, and connect/headers timeouts. Everything we send is an idempotent GET or HEAD.
 */
const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

export function isRetryableError(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && RETRYABLE_CODES.has(code);
}

/** 5xx is worth one more try (a restarting upstream, a bad backend behind a balancer). */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 && status !== 501 && status !== 505;
}

/**
 * One short, jittered pause before the single retry: long enough for a restarting backend or a
 * reset pool, short enough that a client waiting on a cold pull barely notices.
 */
export async function retryPause(signal: AbortSignal | undefined, random: () => number = Math.random): Promise<void> {
  try {
    await sleep(100 + Math.floor(random() * 200), undefined, signal === undefined ? {} : { signal });
  } catch (err) {
    // Surface the caller's own abort reason, as an aborted request does.
    signal?.throwIfAborted();
    throw err;
  }
}
