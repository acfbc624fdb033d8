import { STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { OciError, ociErrorBody } from '../oci/index.js';
import { toErrorAnswer } from './errors.js';

/** A parser failure: Node's HTTP errors carry a code and the bytes it choked on. */
type ParserError = Error & { code?: string; rawPacket?: Buffer };

/** The first byte of a TLS record carrying a handshake: a client speaking TLS to a plain port. */
const TLS_HANDSHAKE = 0x16;

/**
 * Answers what never becomes a request, so a client gets a status and an OCI error body instead of a
 * silent close: requests Node's parser rejects (NUL or raw non-ASCII in the path, bad method
 * tokens, HTTP/1.2, Content-Length with Transfer-Encoding) get 400, oversized headers 431, headers
 * that do not arrive within the header timeout 408 (the slowloris guard stays), CONNECT 405.
 * podman, skopeo and docker try TLS on a plain port first: that garbage keeps its quiet close with
 * an empty 400 (a log line or a JSON body per handshake would only be noise).
 */
export function answerEdges<S extends Server>(server: S): S {
  server.on('clientError', (err: ParserError, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const answer = err.rawPacket?.[0] === TLS_HANDSHAKE ? 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n' : rawAnswer(edgeError(err.code));
    afterCurrentResponse(socket, () => socket.end(answer));
  });
  // Without a listener Node closes CONNECT requests without a word.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    socket.end(rawAnswer(new OciError('UNSUPPORTED', 'CONNECT is not supported: this is a registry mirror, not a proxy', { headers: { allow: 'GET, HEAD' } })));
  });
  return server;
}

/** createServer options for a header timeout other than Node's; checked often enough to hold to it. */
export function headerTimeouts(headersTimeoutMs: number | undefined): { headersTimeout?: number; connectionsCheckingInterval?: number } {
  if (headersTimeoutMs === undefined) return {};
  return { headersTimeout: headersTimeoutMs, connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(headersTimeoutMs / 4))) };
}

/** What a parser error code means for the client. */
export function edgeError(code: string | undefined): OciError {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new OciError('UNSUPPORTED', 'the request headers did not arrive in time', { status: 408 });
    case 'HPE_HEADER_OVERFLOW':
      return new OciError('UNSUPPORTED', 'the request headers are too large', { status: 431 });
    default:
      return new OciError('UNSUPPORTED', `malformed HTTP request${code ? ` (${code})` : ''}`, { status: 400 });
  }
}

/**
 * Runs `write` once the response to an earlier request on this connection (pipelined before the bad
 * one) is complete: bytes written sooner would land inside it, or pass for its answer. A response
 * that never completes takes the connection with it.
 */
function afterCurrentResponse(socket: Duplex, write: () => void): void {
  // `_httpMessage` is Node's own link from a socket to its current response; there is no public one.
  const current = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (current === undefined || current === null || current.writableFinished) {
    write();
    return;
  }
  current.once('finish', write);
  current.once('close', () => {
    if (!current.writableFinished) socket.destroy();
  });
}

/** A whole HTTP/1.1 response, written straight to a socket that has no ServerResponse. */
function rawAnswer(err: OciError): string {
  const answer = toErrorAnswer(err, 'other');
  const body = ociErrorBody(answer.code, answer.message);
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'docker-distribution-api-version': 'registry/2.0',
    ...answer.headers,
    connection: 'close',
  };
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}\r\n${head}\r\n${body}`;
}
