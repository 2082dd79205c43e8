/**
 * The base of every error the product throws on purpose. Each carries a stable `code` (snake_case,
 * what callers and the HTTP/socket/CLI layers branch on) and a message meant to be shown as is.
 *
 * `isInstance` works across duplicate copies of the package (two installs, tsx loading a module
 * twice, a worker thread), where `instanceof` does not: every instance records the names of its
 * class chain under a `Symbol.for` key, which is one symbol in every copy of this module.
 */
const MARKER = Symbol.for('corgi.error');

export class CorgiError extends Error {
  /** The class names from this error's class up to `CorgiError`. */
  private readonly [MARKER]: readonly string[];

  constructor(
    /** Stable, machine-readable kind of failure. */
    readonly code: string,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const names: string[] = [];
    for (let c: { name: string } | null = new.target; c && c !== Error; c = Object.getPrototypeOf(c)) {
      names.push(c.name);
    }
    this[MARKER] = names;
    this.name = new.target.name;
  }

  /**
   * True when `error` is an instance of the class this is called on (or of a subclass), from any
   * copy of the module: `GgufError.isInstance(e)` narrows `e` to `GgufError`.
   */
  static isInstance<T>(this: abstract new (...args: never[]) => T, error: unknown): error is T {
    if (typeof error !== 'object' || error === null) return false;
    const names = (error as Record<symbol, unknown>)[MARKER];
    // biome-ignore lint/complexity/noThisInStatic: `this` is the subclass it is called on
    return Array.isArray(names) && names.includes(this.name);
  }
}
