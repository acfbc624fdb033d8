import { OciError, officialName, parseDigest, parseRepositoryName, parseTag, type Digest, type RepositoryName, type RouteContext, type Tag } from '../oci/index.js';
import { LayoutError } from './errors.js';

/** One image as the layouts name it: `docker.io/library/nginx:1.27`, `ghcr.io/org/app@sha256:…`. */
export interface ImageRef {
  /** A configured upstream's name (aliases resolved). */
  readonly upstream: string;
  readonly repository: RepositoryName;
  readonly tag: Tag | undefined;
  readonly digest: Digest | undefined;
}

/** Upstream names and aliases, the way routing knows them. */
export type UpstreamNames = Pick<RouteContext, 'upstreams' | 'aliases'>;

const DOCKER_HUB = 'docker.io';

/**
 * Reads a full reference. The first component names a configured upstream (or an alias); a name
 * without a registry host (`nginx:1.27`, `team/app:1`, as `docker save` and containerd write them)
 * is Docker Hub's, as every client reads it. Throws LayoutError saying what is wrong.
 */
export function parseImageRef(text: string, names: UpstreamNames): ImageRef {
  const bad = (why: string) => new LayoutError(`${JSON.stringify(text)} is not a valid image reference: ${why}`);
  let rest = text.trim();
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = attempt(() => parseDigest(rest.slice(at + 1)), bad);
    rest = rest.slice(0, at);
  }
  let tag: Tag | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = attempt(() => parseTag(rest.slice(colon + 1)), bad);
    rest = rest.slice(0, colon);
  }
  if (tag === undefined && digest === undefined) throw bad('it names no tag or digest (e.g. docker.io/library/alpine:3.20)');
  const slash = rest.indexOf('/');
  const first = slash === -1 ? rest : rest.slice(0, slash);
  let upstream = lookup(names, first);
  let name = slash === -1 ? '' : rest.slice(slash + 1);
  if (upstream === undefined || name === '') {
    if (slash !== -1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
      throw bad(`${first} is not a configured upstream (${[...names.upstreams.keys()].join(', ')})`);
    }
    upstream = lookup(names, DOCKER_HUB);
    if (upstream === undefined) throw bad(`a name without a registry is Docker Hub's, and ${DOCKER_HUB} is not a configured upstream or alias`);
    name = rest;
  }
  const full = officialName(name, names.upstreams.get(upstream)?.officialLibrary === true);
  const repository = attempt(() => parseRepositoryName(full), bad);
  return { upstream, repository, tag, digest };
}

/** The canonical full reference: `<upstream>/<repository>:<tag>`, or `@<digest>` without a tag. */
export function formatImageRef(ref: Pick<ImageRef, 'upstream' | 'repository' | 'tag' | 'digest'>): string {
  const base = `${ref.upstream}/${ref.repository}`;
  return ref.tag !== undefined ? `${base}:${ref.tag}` : `${base}@${ref.digest ?? ''}`;
}

function lookup(names: UpstreamNames, value: string): string | undefined {
  return names.upstreams.has(value) ? value : names.aliases.get(value);
}

function attempt<T>(read: () => T, bad: (why: string) => LayoutError): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof OciError) throw bad(err.message);
    throw err;
  }
}
