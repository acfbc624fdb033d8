import { ConfigError, ConfigErrors, configChanges, sameValue, type Config, type PolicyRule, type UpstreamConfig } from './config/index.js';
import type { PinSet, RegistryReader } from './mirror/index.js';
import type { ConfigStatus, Logger, ReloadOutcome } from './observability/index.js';
import { PolicyGate } from './policy/index.js';
import type { SyncService } from './sync/index.js';
import type { Upstream } from './upstream/index.js';
import { Swappable } from './swappable.js';

/** What a config reload (SIGHUP) reaches: the parts built from the config that may change while serving. */
export interface ReloadParts {
  readonly logger: Logger;
  readonly observer: { configReloaded(result: 'applied' | 'refused'): void };
  readonly now: () => number;
  /** Builds the client of one upstream (a fresh one has its own token cache). */
  readonly createUpstream: (config: UpstreamConfig) => Upstream;
  /** What the policy gate wraps (the mirror, built after the upstreams), and what it is built with. */
  readonly policy: () => { readonly inner: RegistryReader; readonly deps: ConstructorParameters<typeof PolicyGate>[2] };
  readonly sync: Pick<SyncService, 'reconfigure'>;
  /** The pin set the cache decides by: the config's patterns plus the storage's pins.json. */
  readonly pins: {
    replace(next: PinSet): void;
    /** The pin set a config asks for (pins.json re-read). */
    of(config: Config): Promise<PinSet>;
    /** Re-sorts the cached blobs by the pin set in force. */
    repin(): void;
  };
}


/**
 * The config in force, and SIGHUP's reload of it: the new file is loaded and checked as at start-up,
 * upstream credentials, policy, sync, log level and pins change in place, and whatever else changed
 * keeps its running value and is named as needing a restart. A config that does not load (or a
 * policy key, a pin budget that does not fit) is refused whole with one error line.
 */
export class ConfigReload {
  #config: Config;
  readonly #loadedAt: number;
  #last: ConfigStatus['lastReload'] = null;
  /** Two SIGHUPs in a row reload one after the other. */
  #queue: Promise<unknown> = Promise.resolve();
  readonly #upstreams = new Map<string, Swappable<Upstream>>();
  /** Clients replaced by a credentials change: still serving what they started, closed with the App. */
  readonly #retired: Upstream[] = [];
  #reader: Swappable<RegistryReader> | undefined;
  /** The upstream clients as the mirror holds them: each follows its credentials across reloads. */
  readonly upstreams: ReadonlyMap<string, Upstream>;

  constructor(
    config: Config,
    private readonly parts: ReloadParts,
  ) {
    this.#config = config;
    this.#loadedAt = parts.now();
    for (const [name, u] of config.upstreams) this.#upstreams.set(name, new Swappable(parts.createUpstream(u)));
    this.upstreams = new Map([...this.#upstreams].map(([name, holder]) => [name, holder.value]));
  }

  /** What clients read through: the policy gate in force (the mirror itself without rules). */
  get reader(): RegistryReader {
    return this.readerHolder().value;
  }

  get config(): Config {
    return this.#config;
  }

  /** Before serving: the policy rules' public keys (a missing one stops start-up, naming it). */
  async open(): Promise<void> {
    const reader = this.readerHolder().current;
    if (reader instanceof PolicyGate) await reader.open();
  }

  reload(load: () => Promise<Config>): Promise<ReloadOutcome> {
    const run = this.#queue.then(() => this.#reload(load));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #reload(load: () => Promise<Config>): Promise<ReloadOutcome> {
    const { logger, observer, now } = this.parts;
    const at = now();
    try {
      const next = await load();
      const running = this.#config;
      const effective = reloadable(running, next);
      const changed = configChanges(running, effective);
      const restartNeeded = configChanges(effective, next);
      await this.#apply(effective, running);
      this.#config = effective;
      this.#last = { at: new Date(at).toISOString(), ok: true, restartNeeded };
      observer.configReloaded('applied');
      logger.info({ changed }, changed.length === 0 ? 'config reloaded: nothing to change' : `config reloaded: ${changed.join(', ')}`);
      if (restartNeeded.length > 0) {
        logger.warn({ restartNeeded }, `config reload: ${restartNeeded.map((k) => `${k} needs a restart`).join(', ')}; the running value stays until then`);
      }
      return { ok: true, changed, restartNeeded };
    } catch (err) {
      const error = refusal(err);
      this.#last = { at: new Date(at).toISOString(), ok: false, error, restartNeeded: [] };
      observer.configReloaded('refused');
      logger.error({ error }, `config reload refused, the running config stays in force: ${error}`);
      return { ok: false, error, changed: [], restartNeeded: [] };
    }
  }

  /** The fallible steps first (policy keys, pins.json), so a refusal leaves everything as it was. */
  async #apply(next: Config, running: Config): Promise<void> {
    const { logger, sync, pins } = this.parts;
    // Key files are read again too: a rotated key applies with the SIGHUP that follows it.
    const rebuild = !sameValue(running.policy, next.policy) || next.policy.some((r) => r.requireSignature !== undefined);
    const reader = rebuild ? this.policyReader(next.policy) : undefined;
    if (reader instanceof PolicyGate) await reader.open();
    const pinSet = await pins.of(next);
    pins.replace(pinSet);
    pins.repin();
    if (reader !== undefined) this.readerHolder().swap(reader);
    for (const [name, holder] of this.#upstreams) {
      const [was, now] = [running.upstreams.get(name), next.upstreams.get(name)];
      // A fresh client: the old one's tokens were issued to the old credentials.
      if (was !== undefined && now !== undefined && (was.username !== now.username || was.password !== now.password)) this.#retired.push(holder.swap(this.parts.createUpstream(now)));
    }
    sync.reconfigure(next.sync);
    logger.level = next.log.level;
  }

  status(): ConfigStatus {
    return { loadedAt: new Date(this.#loadedAt).toISOString(), lastReload: this.#last };
  }

  /** Closes every upstream client, those a reload replaced too (which aborts whatever they still run). */
  closeUpstreams(onError: (err: unknown) => void): Promise<unknown> {
    const all = [...[...this.#upstreams.values()].map((h) => h.current), ...this.#retired];
    return Promise.all(all.map((u) => u.close().catch(onError)));
  }

  private readerHolder(): Swappable<RegistryReader> {
    this.#reader ??= new Swappable(this.policyReader(this.#config.policy));
    return this.#reader;
  }

  private policyReader(rules: readonly PolicyRule[]): RegistryReader {
    const { inner, deps } = this.parts.policy();
    return rules.length === 0 ? inner : new PolicyGate(inner, rules, deps);
  }
}

/**
 * The config a reload puts in force: the running one with the new upstream credentials, policy,
 * sync, log level and pins. Everything else (listeners, storage, upstream URLs, auth, …) is what the
 * parts were built with and keeps its running value.
 */
export function reloadable(running: Config, next: Config): Config {
  const upstreams = new Map(
    [...running.upstreams].map(([name, u]) => {
      const n = next.upstreams.get(name);
      return [name, n === undefined ? u : { ...u, username: n.username, password: n.password }];
    }),
  );
  return { ...running, upstreams, policy: next.policy, sync: next.sync, log: next.log, storage: { ...running.storage, pin: next.storage.pin } };
}

/** One line: a config error with its key or JSON position (and how many more there are). */
function refusal(err: unknown): string {
  if (err instanceof ConfigErrors && err.errors.length > 1) return `${err.message} (and ${err.errors.length - 1} more: regmirror config check lists them all)`;
  if (err instanceof ConfigError) return err.message;
  return err instanceof Error ? err.message : String(err);
}
