/**
 * One stable object whose implementation can be replaced while others hold it: what a config reload
 * uses for parts built once from the config and immutable since (an upstream client with its
 * credentials and token cache, the policy gate). A call already made keeps the object it reached;
 * every later property read goes to the replacement.
 */
export class Swappable<T extends object> {
  #current: T;
  /** Hand this out instead of the implementation. */
  readonly value: T;

  constructor(initial: T) {
    this.#current = initial;
    // A Proxy rather than a delegating class: whatever members T gains later are forwarded too.
    this.value = new Proxy(initial, {
      get: (_target, key) => {
        const current = this.#current;
        const member: unknown = Reflect.get(current, key, current);
        return typeof member === 'function' ? (member as (...args: unknown[]) => unknown).bind(current) : member;
      },
    });
  }

  get current(): T {
    return this.#current;
  }

  /** Replaces the implementation; returns the one replaced (still serving the calls it has). */
  swap(next: T): T {
    const previous = this.#current;
    this.#current = next;
    return previous;
  }
}
