import { errorCode } from '../observability/index.js';

/**
 * A URL as it may appear in messages: origin and path only. Query strings of storage redirects are
 * signatures (`verify=`, `sig=`, `X-Amz-*`; checklist 12), and userinfo is never printed.
 */
export function describeUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** Any URL-looking text with its query and userinfo removed. */
export function redactText(text: string): string {
  return text.replace(/\b(https?:\/\/)(?:[^\s/@]*@)?([^\s?#]*)[?#][^\s]*/gi, '$1$2').replace(/\b(https?:\/\/)[^\s/@]*@/gi, '$1');
}

/**
 * A plain copy of a low-level error for `cause`: name, code and a redacted message, nothing else.
 * undici's errors can hold references to sockets and request options; a copy carries no headers.
 */
export function safeCause(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(redactText(String(err)));
  const copy = new Error(redactText(err.message));
  copy.name = err.name;
  const code = errorCode(err);
  if (code !== undefined) (copy as Error & { code: string }).code = code;
  return copy;
}

