// The check worker under tsx, for development and tests: tsx's loader hooks do not cross into
// worker threads, so this plain module registers them in the worker before importing the worker.
import { register } from 'tsx/esm/api';

register();
const worker = await import(new URL('./check-worker.ts', import.meta.url).href);

export default worker.default;
