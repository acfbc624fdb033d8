import type { Logger } from 'pino';
import { Coalescer } from '../concurrency/index.js';
import { nextReferrersPage, OciError, parseReferrersIndex, referrersIndex, type Digest } from '../oci/index.js';
import { errorSummary } from '../observability/index.js';
import type { ReferrersRecord, ReferrersStore } from '../storage/index.js';
import { UpstreamError } from '../upstream/index.js';
import type { ReferrersReply, RepoRef, UpstreamLookup } from './types.js';

interface Deps {
  readonly upstreams: UpstreamLookup;
  readonly metadata: ReferrersStore;
  readonly logger: Logger;
  /** The tag TTL: a referrers list changes as signatures and SBOMs are pushed, like a tag. */
  readonly ttlMs: number;
  readonly now: () => number;
}

/**
 * The referrers API, cached like a tag: upstream's answer (the unfiltered list, or "no referrers
 * API") is trusted for the TTL, fetched again after it, and served stale while upstream cannot
 * answer. The artifactType filter is applied here, so one cached list serves every filter. Never a
 * 200 list upstream did not send: with no record and no answer the client gets the error.
 */
export class ReferrersService {
  private readonly fetches = new Coalescer<ReferrersRecord>();

  constructor(private readonly deps: Deps) {}

  async get(ref: RepoRef, subject: Digest, artifactType: string | undefined, page: string): Promise<ReferrersReply> {
    const record = await this.current(ref, subject, page);
    if (record.body === null) {
      // 404: clients (cosign, notation, oras) then look for the sha256-<hex> fallback tag.
      throw new OciError('UNSUPPORTED', `upstream ${ref.upstream} has no referrers API: use the referrers tag schema`, { status: 404 });
    }
    let descriptors;
    try {
      descriptors = parseReferrersIndex(record.body);
    } catch (err) {
      throw new UpstreamError(ref.upstream, 'bad-response', `a stored referrers list is unreadable: ${(err as Error).message}`);
    }
    return { body: referrersIndex(descriptors, artifactType), filtered: artifactType !== undefined, next: record.next };
  }

  private async current(ref: RepoRef, subject: Digest, page: string): Promise<ReferrersRecord> {
    const { metadata, upstreams, now, ttlMs, logger } = this.deps;
    const record = await metadata.getReferrers(ref.upstream, ref.name, subject, page);
    const upstream = upstreams.get(ref.upstream);
    // Nothing can add a referrer upstream of an offline upstream: what was recorded is the answer.
    if (record !== undefined && (now() - record.fetchedAt < ttlMs || upstream.offline)) return record;
    if (upstream.offline) {
      throw new OciError('NAME_UNKNOWN', `no referrers of ${ref.name}@${subject} are held here, and upstream ${ref.upstream} is offline`, { status: 404 });
    }
    try {
      return await this.fetch(ref, subject, page);
    } catch (err) {
      if (record === undefined || !(err instanceof UpstreamError) || err.failure === 'not-found') throw err;
      logger.warn({ upstream: ref.upstream, repository: ref.name, subject, error: errorSummary(err) }, 'upstream could not refresh a referrers list; serving the cached one');
      return record;
    }
  }

  /** One upstream GET per page at a time; the answer is checked before it is recorded or served. */
  private async fetch(ref: RepoRef, subject: Digest, page: string): Promise<ReferrersRecord> {
    const key = `${ref.upstream}\u0000${ref.name}\u0000${subject}\u0000${page}`;
    const { promise } = this.fetches.run(key, async () => {
      const { upstreams, metadata, now, logger } = this.deps;
      let record: ReferrersRecord;
      try {
        const answer = await upstreams.get(ref.upstream).listReferrers(ref.name, subject, page);
        try {
          parseReferrersIndex(answer.body);
        } catch (err) {
          const why = `an invalid referrers list: ${(err as Error).message}`;
          throw new UpstreamError(ref.upstream, 'bad-response', `upstream sent ${why}`, { reason: why });
        }
        const next = nextReferrersPage(answer.link);
        record = { body: answer.body.toString('utf8'), ...(next === undefined ? {} : { next }), fetchedAt: now() };
      } catch (err) {
        if (!(err instanceof UpstreamError) || err.failure !== 'not-found') throw err;
        record = { body: null, fetchedAt: now() };
      }
      try {
        await metadata.setReferrers(ref.upstream, ref.name, subject, page, record);
      } catch (err) {
        // Not recorded: the next request asks upstream again; this one is answered all the same.
        logger.debug({ upstream: ref.upstream, repository: ref.name, subject, error: errorSummary(err) }, 'recording a referrers list failed');
      }
      return record;
    });
    return promise;
  }
}
