/**
 * What wink-nlp is given to read: its tokenizer splits a text at whitespace first, then tokenizes
 * each piece on its own, and that second step is quadratic in the piece's length. The model's
 * abbreviation test (`/[a-z].*\.$/i`, run on every new token) backtracks over the whole token, and
 * the recursive tokenizer re-slices the rest of a piece at each punctuation mark. Measured on one
 * piece: 8,000 × "a" 68 ms, 2,000 × "dog-" 0.9 s, 250,000 × "a" 56 s. No word is that long, so
 * `boundPieces` cuts every piece longer than `WINK_PIECE_MAX_CHARS` before wink sees it, which
 * keeps the work per character bounded and leaves every text with ordinary pieces unchanged.
 */

/**
 * The longest whitespace-separated piece wink reads whole: far above any English word (45
 * letters) and most URLs, while a piece this long costs wink about a tenth of a millisecond.
 */
export const WINK_PIECE_MAX_CHARS = 128;

/**
 * Whether wink's tokenizer splits a text at this UTF-16 code before anything else (the model's
 * `trex.helpers.splitter`: spaces, no-break and thin spaces, line breaks, tabs). It then tokenizes
 * each piece on its own, so a text's tokens are its pieces' tokens in order.
 */
export function isWinkSpace(code: number): boolean {
  if (code > 32 && code < 0xa0) return false;
  return (
    code === 32 ||
    code === 10 ||
    code === 13 ||
    code === 9 ||
    code === 0xa0 ||
    (code >= 0x2002 && code <= 0x2005) ||
    code === 0x2009 ||
    code === 0x200a ||
    code === 0x202f ||
    code === 0x205f
  );
}

/** A letter, digit or combining mark: a piece is never cut between two of these (but see `boundPiece`). */
const WORD_CHAR = /[\p{L}\p{N}\p{M}]/u;

function isWordCode(piece: string, i: number): boolean {
  const code = piece.charCodeAt(i);
  if (code < 128) {
    return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
  }
  // A high surrogate belongs with the low one after it; never cut between them.
  if (code >= 0xd800 && code <= 0xdbff) return true;
  return WORD_CHAR.test(piece[i]);
}

/**
 * `text` with every piece longer than `max` characters cut with spaces into segments of at most
 * `max`: after a punctuation mark or symbol where there is one (so words inside a long
 * punctuated run, "dog,park,...", stay whole and are still found), and a run of more than `max`
 * letters and digits, which is no word, is kept as its first `max` characters only (cutting it
 * would make up short words that are not in the text). Returns `text` itself when no piece is
 * that long.
 */
export function boundPieces(text: string, max = WINK_PIECE_MAX_CHARS): string {
  let out: string[] | null = null;
  let copied = 0;
  let start = 0;
  for (let end = 0; end <= text.length; end++) {
    if (end < text.length && !isWinkSpace(text.charCodeAt(end))) continue;
    if (end - start > max) {
      out ??= [];
      out.push(text.slice(copied, start), boundPiece(text.slice(start, end), max));
      copied = end;
    }
    start = end + 1;
  }
  if (out === null) return text;
  out.push(text.slice(copied));
  return out.join('');
}

function boundPiece(piece: string, max: number): string {
  const segments: string[] = [];
  let start = 0;
  while (piece.length - start > max) {
    // The last cut point (just after a non-word character) within the next `max` characters.
    let cut = -1;
    for (let i = start + max - 1; i >= start; i--) {
      if (!isWordCode(piece, i)) {
        cut = i + 1;
        break;
      }
    }
    if (cut > start) {
      segments.push(piece.slice(start, cut));
      start = cut;
      continue;
    }
    // A run of more than `max` word characters from `start`: keep its head, skip the rest of it.
    segments.push(piece.slice(start, start + max));
    let next = start + max;
    while (next < piece.length && isWordCode(piece, next)) next++;
    start = next;
  }
  if (start < piece.length) segments.push(piece.slice(start));
  return segments.join(' ');
}
