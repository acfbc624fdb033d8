import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the start-up line names an address: IPv6 in brackets, as `listen` takes it. */
export function hostPort(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

/** Listens, resolving with the bound address (port 0 picks one) or rejecting with the bind error. */
export function listen(server: Server, { host, port }: { host: string; port: number }): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
