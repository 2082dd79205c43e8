/**
 * `--policy` / `CORGI_POLICY` values: a checkpoint directory, `openai:<baseURL>#<model>` or
 * `vllm:<baseURL>#<model>`. Parsing loads nothing heavy, so commands check a spec before start-up work.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolveCheckpointDir } from './builtin-model.ts';

/** An http(s) base URL without trailing slashes. @throws naming `field` */
export function parseBaseURL(value: string, field: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${field}: expected an http(s) URL such as http://127.0.0.1:8000/v1, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`${field}: expected an http(s) URL, got "${value}"`);
  }
  return value.replace(/\/+$/, '');
}

export type PolicySpec = { kind: 'local'; dir: string } | RemotePolicySpec;
export type RemotePolicySpec = { kind: 'openai'; baseURL: string; model: string; vllm: boolean };

/** True for an `openai:` / `vllm:` spec (also how a remote base model is recorded in `policy_versions`). */
export function isRemotePolicySpec(value: string): boolean {
  return /^(openai|vllm):/.test(value);
}

/**
 * Parses a policy spec: `openai:<baseURL>#<model>` (any OpenAI-compatible server),
 * `vllm:<baseURL>#<model>` (the same, plus vLLM's token ids and log-probs), or a checkpoint
 * directory. `field` names the option in errors.
 */
export function parsePolicySpec(spec: string, field = 'policy'): PolicySpec {
  const remote = /^(openai|vllm):(.*)$/s.exec(spec);
  if (!remote) {
    if (spec.trim() === '')
      throw new Error(`${field}: expected a checkpoint directory or openai:<baseURL>#<model>`);
    return { kind: 'local', dir: resolveCheckpointDir(spec) };
  }
  const [, scheme, rest] = remote;
  const hash = rest.lastIndexOf('#');
  if (hash < 0 || hash === rest.length - 1) {
    throw new Error(
      `${field}: expected ${scheme}:<baseURL>#<model> (for example ${scheme}:http://127.0.0.1:8000/v1#my-model), got "${spec}"`,
    );
  }
  return {
    kind: 'openai',
    baseURL: parseBaseURL(rest.slice(0, hash), field),
    model: rest.slice(hash + 1),
    vllm: scheme === 'vllm',
  };
}

/**
 * Parses a spec and, for a directory, checks that it holds a checkpoint: the cheap checks, so a
 * command can refuse a bad `--policy` before any slow start-up work.
 * @throws naming `field`
 */
export function checkPolicySpec(spec: string, field = 'policy'): PolicySpec {
  const parsed = parsePolicySpec(spec, field);
  if (parsed.kind === 'local' && !existsSync(join(parsed.dir, 'config.json'))) {
    throw new Error(
      `${field}: no checkpoint at ${parsed.dir} (config.json missing). Point --policy or CORGI_POLICY at a ` +
        'checkpoint directory or at openai:<baseURL>#<model>, or build the base model with `corgi pretrain`.',
    );
  }
  return parsed;
}
