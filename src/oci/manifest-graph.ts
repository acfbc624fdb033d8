import type { Digest } from './digest.js';
import { childDescriptors, type Descriptor, type ParsedManifest } from './manifest.js';

/** How one walk reaches manifests; the walk itself does no I/O. */
export interface ManifestGraph {
  /** Reads a manifest; undefined when it is not at hand (it then reaches nothing beyond itself). */
  load(digest: Digest, mediaType: string): Promise<ParsedManifest | undefined>;
  /** Whether `child` is a manifest to read in turn; the others (configs, layers) are leaves. */
  descend(child: Descriptor, parent: ParsedManifest): boolean;
}

export interface ManifestGraphRoot {
  readonly digest: Digest;
  readonly mediaType: string;
  /** Already read (a tag resolved by its caller): not loaded again. */
  readonly parsed?: ParsedManifest;
}

export interface WalkOptions {
  /** Digests already reached: skipped with what they reach. Filled by the walk; share it across roots. */
  readonly reached?: Set<Digest>;
  /** Deeper descents throw: content addressing rules out cycles, so only abuse nests that deep. */
  readonly maxDepth?: number;
  /** Called for every manifest read, in pre-order (children in the order the parent lists them). */
  readonly onManifest?: (digest: Digest, manifest: ParsedManifest) => void;
}

export class ManifestGraphTooDeepError extends Error {
  constructor(readonly maxDepth: number) {
    super(`index nested deeper than ${maxDepth} levels`);
    this.name = 'ManifestGraphTooDeepError';
  }
}

/**
 * Every digest `root` reaches (itself included), each reached once: the one traversal behind what a
 * tag keeps (`cache ls`/`gc`) and what sync fetches. Returns the `reached` set.
 */
export async function walkManifestGraph(root: ManifestGraphRoot, graph: ManifestGraph, options: WalkOptions = {}): Promise<Set<Digest>> {
  const reached = options.reached ?? new Set<Digest>();
  const maxDepth = options.maxDepth ?? Infinity;
  const visit = async (digest: Digest, mediaType: string, known: ParsedManifest | undefined, depth: number): Promise<void> => {
    reached.add(digest);
    const manifest = known ?? (await graph.load(digest, mediaType));
    if (manifest === undefined) return;
    options.onManifest?.(digest, manifest);
    for (const child of childDescriptors(manifest)) {
      if (reached.has(child.digest)) continue;
      if (!graph.descend(child, manifest)) {
        reached.add(child.digest);
        continue;
      }
      if (depth >= maxDepth) throw new ManifestGraphTooDeepError(maxDepth);
      await visit(child.digest, child.mediaType, undefined, depth + 1);
    }
  };
  if (!reached.has(root.digest)) await visit(root.digest, root.mediaType, root.parsed, 0);
  return reached;
}
