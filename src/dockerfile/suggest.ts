import { editDistance } from '../util/levenshtein.js';

/**
 * The closest candidate for a "did you mean" (BuildKit's suggest package is more generous than
 * util's didYouMean: `form` → `from`, `PAHT` → `PATH`). Case-insensitive distance, exact match excluded.
 */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(2, Math.floor(word.length / 2));
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    if (c === word) continue;
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist && d <= limit) {
      best = c;
      bestDist = d;
    }
  }
  return best;
}
