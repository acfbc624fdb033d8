import { BlockList, isIP } from 'node:net';

/** How many X-Forwarded-For hops are examined from the right; a longer chain is a client's invention. */
const MAX_HOPS = 32;
/** Addresses whose answer is remembered; past this the memo starts over (bounded, whatever clients send). */
const MEMO_SIZE = 4096;

/**
 * `access.trustedProxies` (addresses and CIDR ranges, IPv4 and IPv6): whose X-Forwarded-For is believed.
 * The client is the right-most address of the chain that is not a trusted proxy, the address the
 * nearest untrusted party connected from; everything left of it may be forged by that party.
 */
export class TrustedProxies {
  private readonly list = new BlockList();
  private readonly empty: boolean;
  private readonly seen = new Map<string, boolean>();

  constructor(ranges: readonly string[]) {
    this.empty = ranges.length === 0;
    for (const range of ranges) {
      const [address = '', bits] = range.split('/');
      // `::ffff:10.0.0.0/104` is 10.0.0.0/8: peers are compared in their IPv4 spelling.
      const mapped = unmapped(address) !== address && (bits === undefined || Number(bits) >= 96);
      const plain = mapped ? unmapped(address) : address;
      const prefix = bits === undefined ? undefined : mapped ? Number(bits) - 96 : Number(bits);
      const family = isIP(plain) === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) this.list.addAddress(plain, family);
      else this.list.addSubnet(plain, prefix, family);
    }
  }

  has(address: string): boolean {
    if (this.empty) return false;
    // BlockList.check costs microseconds; the same few proxies and clients ask again and again.
    let trusted = this.seen.get(address);
    if (trusted === undefined) {
      const plain = unmapped(address);
      const version = isIP(plain);
      trusted = version !== 0 && this.list.check(plain, version === 4 ? 'ipv4' : 'ipv6');
      if (this.seen.size >= MEMO_SIZE) this.seen.clear();
      this.seen.set(address, trusted);
    }
    return trusted;
  }

  /**
   * The client's address: the socket peer, unless the peer is a trusted proxy and sent X-Forwarded-For,
   * in which case the chain is walked from the right past every trusted hop. An entry that is no IP
   * address (a proxy bug, or garbage the client started the chain with) stops the walk at the last
   * address seen, so client-controlled text never becomes the recorded address.
   */
  clientAddress(peer: string | undefined, forwardedFor: string | undefined): string | undefined {
    if (peer === undefined) return undefined;
    let client = unmapped(peer);
    if (forwardedFor === undefined || !this.has(client)) return client;
    const hops = forwardedFor.split(',').slice(-MAX_HOPS).reverse();
    for (const hop of hops) {
      const address = hopAddress(hop.trim());
      if (address === undefined) return client;
      client = address;
      if (!this.has(address)) return client;
    }
    return client;
  }
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is `10.0.0.1`: one spelling per client. */
function unmapped(address: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return m?.[1] ?? address;
}

/** One X-Forwarded-For entry as an address: some proxies add a port (`1.2.3.4:5678`, `[2001:db8::1]:443`). */
function hopAddress(hop: string): string | undefined {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  const withPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop);
  const address = unmapped(bracketed?.[1] ?? withPort?.[1] ?? hop);
  return isIP(address) === 0 ? undefined : address;
}
