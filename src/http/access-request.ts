import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AccessRequest } from '../access/index.js';
import { verifiedClientName } from './tls.js';

/** What an access controller may see of a request: credentials and where it came from, no way to answer. */
export function accessRequest(req: IncomingMessage): AccessRequest {
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    headers: req.headers,
    remoteAddress: req.socket.remoteAddress,
    secure: (req.socket as Partial<TLSSocket>).encrypted === true,
    clientCertificate: verifiedClientName(req.socket),
  };
}
