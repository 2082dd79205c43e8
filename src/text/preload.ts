import { loadLangdetectModel } from './langdetect.ts';
import { brownPunktParameters } from './punkt.ts';

/**
 * Builds the lazily loaded models now: the Brown-trained Punkt parameters (about a second) and
 * the langdetect profiles. Call it at server start so no request pays for them.
 */
export function preloadTextModels(): void {
  brownPunktParameters();
  loadLangdetectModel();
}
