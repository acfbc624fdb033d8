import type { AddressInfo } from 'node:net';

/** How the start-up line names an address: IPv6 in brackets, as `listen` takes it. */
export function hostPort(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

/** The start-up line's addresses: where it listens, over what, with which certificate. */
export function listeningFields(
  address: AddressInfo,
  certificate: { readonly subject: string; readonly fingerprint: string; readonly validTo: string } | undefined,
  tlsAddress: AddressInfo | undefined,
  metricsAddress: AddressInfo | undefined,
): Record<string, unknown> {
  return {
    address: hostPort(address),
    protocol: certificate !== undefined && tlsAddress === undefined ? 'https' : 'http',
    ...(tlsAddress ? { httpsAddress: hostPort(tlsAddress) } : {}),
    ...(certificate ? { certificate: { subject: certificate.subject, fingerprint: certificate.fingerprint, validTo: certificate.validTo } } : {}),
    ...(metricsAddress ? { metricsAddress: hostPort(metricsAddress) } : {}),
  };
}
