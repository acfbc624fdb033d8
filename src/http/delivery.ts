import type { ServerResponse } from 'node:http';
import type { RequestNote } from './handlers.js';

/** What the access log says a client got. */
export interface Delivered {
  /** 0 when not even the status line went out. */
  readonly status: number;
  /** Body bytes handed to the socket, when the route counts them. */
  readonly bytes: number | undefined;
  /** Present when the response was cut before its end (the client left, or the body failed). */
  readonly aborted?: true;
}

/**
 * What the client really got, not what the handler meant to send: a 200 cut after 54 MB is logged
 * as cut, and a response that never started has no status.
 */
export function delivered(res: ServerResponse, note: RequestNote): Delivered {
  const status = res.headersSent ? res.statusCode : 0;
  return res.writableFinished ? { status, bytes: note.bytes } : { status, bytes: note.bytes, aborted: true };
}
