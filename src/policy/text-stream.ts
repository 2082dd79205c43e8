/**
 * `TextStream`: the text of a generation as its tokens arrive, for every engine. Whole characters
 * only (the tokenizer's stream decoder holds an incomplete UTF-8 sequence back), and stop strings
 * cut out and never streamed (text that could still become the start of one is held back, as
 * text-generation-inference does).
 */
import type { StreamDecoder } from '../model/tokenizer.ts';

/** Decoded text of a generation as tokens arrive (see the file comment). */
export class TextStream {
  /** Everything released so far: the concatenation of `push`/`finish` results. */
  emitted = '';
  private text = '';
  private done = false;
  private readonly stop: string[];
  private readonly longestStop: number;

  constructor(
    private readonly decoder: StreamDecoder,
    stop: readonly string[] = [],
  ) {
    this.stop = stop.filter((s) => s.length > 0);
    this.longestStop = Math.max(0, ...this.stop.map((s) => s.length));
  }

  /** Adds one token; returns the text now safe to show and whether a stop string completed. */
  push(id: number): { text: string; stop: boolean } {
    if (this.done) return { text: '', stop: true };
    return this.advance(this.decoder.push(id), false);
  }

  /** Ends the stream: flushes the decoder and releases any held-back text. */
  finish(): { text: string; stop: boolean } {
    if (this.done) return { text: '', stop: false };
    const result = this.advance(this.decoder.flush(), true);
    this.done = true;
    return result;
  }

  private advance(piece: string, final: boolean): { text: string; stop: boolean } {
    const from = Math.max(0, this.text.length - this.longestStop + 1); // a new match ends in `piece`
    this.text += piece;
    let cut = -1;
    for (const s of this.stop) {
      const at = this.text.indexOf(s, from);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      // Held-back text never includes the match's start, so `emitted` ends at or before `cut`.
      const out = this.text.slice(this.emitted.length, cut);
      this.text = this.text.slice(0, cut);
      this.emitted += out;
      this.done = true;
      return { text: out, stop: true };
    }
    let safe = this.text.length;
    if (!final) {
      for (const s of this.stop) {
        for (let k = Math.min(s.length - 1, this.text.length); k > 0; k--) {
          if (this.text.endsWith(s.slice(0, k))) {
            safe = Math.min(safe, this.text.length - k);
            break;
          }
        }
      }
    }
    const out = this.text.slice(this.emitted.length, Math.max(safe, this.emitted.length));
    this.emitted += out;
    return { text: out, stop: false };
  }
}
