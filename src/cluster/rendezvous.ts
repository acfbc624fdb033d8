import { createHash } from 'node:crypto';

/**
 * Rendezvous (highest-random-weight) hashing: every member scores every key, the highest score owns
 * it. Each replica computes the same owner from the same member list with no coordination, and a
 * membership change moves only the keys it must: a member that joins takes the ~1/N keys it now
 * scores highest on, a member that leaves hands on only its own keys (Thaler & Ravishankar, 1998).
 */
export function ownerOf(key: string, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1n;
  for (const member of members) {
    const score = scoreOf(member, key);
    // Ties (astronomically rare) go to the smaller URL, so every replica still agrees.
    if (score > bestScore || (score === bestScore && best !== undefined && member < best)) {
      best = member;
      bestScore = score;
    }
  }
  return best;
}

/** The first 64 bits of sha256(member, key): uniform, and the same on every replica and platform. */
function scoreOf(member: string, key: string): bigint {
  return createHash('sha256').update(member).update('\u0000').update(key).digest().readBigUInt64BE(0);
}
