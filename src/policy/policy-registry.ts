/**
 * The live policy of a process, swappable without dropping a session. Sessions ask for the
 * current policy at every attempt boundary (`PolicySource.current`), so a swap lands between
 * attempts; an attempt already generating finishes on the version it started with, and the old
 * version's resources (tensors) are released only once its last attempt has ended.
 */
import type {
  ChatMessage,
  ChatPolicy,
  GenerateOptions,
  Generation,
  GenerationChunk,
  PolicySource,
} from './types.ts';

/** A policy that owns resources to free when it is retired (a model's tensors). */
export interface DisposablePolicy extends ChatPolicy {
  dispose?(): void | Promise<void>;
}

interface Entry {
  policy: DisposablePolicy;
  /** Attempts generating on this version right now. */
  inFlight: number;
  retired: boolean;
  /** The live wrapper handed to sessions: counts in-flight attempts. */
  tracked: ChatPolicy;
}

export class PolicyRegistry implements PolicySource {
  private live: Entry;
  private readonly listeners = new Set<(version: string) => void>();

  constructor(initial: DisposablePolicy) {
    this.live = this.track(initial);
  }

  current(): ChatPolicy {
    return this.live.tracked;
  }

  get version(): string {
    return this.live.policy.version;
  }

  /** Called with the new version after every swap (metrics, socket broadcasts). */
  onSwap(listener: (version: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Makes `next` live for every attempt that starts from now on. The previous version is disposed
   * as soon as no attempt is generating on it.
   */
  async swap(next: DisposablePolicy): Promise<void> {
    const previous = this.live;
    this.live = this.track(next);
    previous.retired = true;
    if (previous.inFlight === 0) await previous.policy.dispose?.();
    for (const listener of this.listeners) listener(next.version);
  }

  /** Disposes the live policy (shutdown). */
  async close(): Promise<void> {
    this.live.retired = true;
    if (this.live.inFlight === 0) await this.live.policy.dispose?.();
  }

  private track(policy: DisposablePolicy): Entry {
    const entry: Entry = { policy, inFlight: 0, retired: false, tracked: undefined as unknown as ChatPolicy };
    entry.tracked = {
      version: policy.version,
      measurePrompt: policy.measurePrompt?.bind(policy),
      async *generate(
        messages: readonly ChatMessage[],
        options?: GenerateOptions,
      ): AsyncGenerator<GenerationChunk, Generation> {
        entry.inFlight++;
        try {
          return yield* policy.generate(messages, options);
        } finally {
          entry.inFlight--;
          if (entry.retired && entry.inFlight === 0) await policy.dispose?.();
        }
      },
    };
    return entry;
  }
}
