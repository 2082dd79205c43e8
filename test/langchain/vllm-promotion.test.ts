/**
 * Promotion on a server whose policy is remote, against a fake vLLM (fake-openai-server.ts) and the
 * real PostgreSQL: the server is wired as `corgi serve` wires it (`startServedPolicy`), so promoting
 * a version through the admin route or by NOTIFY from another connection makes the server ask vLLM
 * to load the version's LoRA adapter and then name it as the model; sessions in flight finish their
 * attempt on their version; rollback points back (to the base model's name at the end); a refusal
 * or an unreachable vLLM leaves the server on its version with the reason; a plain `openai:`
 * endpoint refuses promotions and says so. Last, a real `corgi serve` process on the embedded
 * database does the same through its admin route.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServedPolicy, startServedPolicy } from '../../src/cli/serve-command.ts';
import { type Database, openDatabase } from '../../src/db/database.ts';
import { getPolicyVersion } from '../../src/db/policy-versions.ts';
import { attachLora, saveLoraAdapter } from '../../src/model/lora.ts';
import {
  createRemotePolicy,
  parsePolicySpec,
  type RemotePolicySpec,
  RemotePromotionError,
  remotePromotionLoader,
} from '../../src/policy/remote-policy.ts';
import { promote } from '../../src/promotion/promote.ts';
import type { PolicyLoader } from '../../src/promotion/versions.ts';
import { type RunningServer, startServer } from '../../src/server/server.ts';
import { useBackend } from '../policy/helpers.ts';
import { tinyModel } from '../policy/tiny-policy.ts';
import { openTestDatabase, TEST_DATABASE_URL } from '../support/database.ts';
import { linesLogger } from '../support/logger-lines.ts';
import { corgiEnv, type ServeProcess, startServe, stopGently } from '../support/processes.ts';
import { type ChatRequestBody, type FakeOpenAIServer, startFakeOpenAIServer } from './fake-openai-server.ts';

const root = mkdtempSync(join(tmpdir(), 'corgi-vllm-promotion-'));
/** Adapter directories as our LoRA code writes them: v2, v3 (rank 4), big (rank 32: vLLM refuses). */
const dirs: Record<string, string> = {};
const NO_RATE_LIMITS = {
  rateLimits: { perIpPerMinute: 0, perKeyPerMinute: 0, sessionsPerMinute: 0, socketConnectionsPerMinute: 0 },
};

/** Each reply names the model that produced it; a `slow` prompt streams for about two seconds. */
function reply(body: ChatRequestBody) {
  const slow = body.messages.some((m) => m.content.includes('slow'));
  return slow
    ? { pieces: Array.from({ length: 10 }, (_, i) => `${body.model}-${i} `), delayMs: 200 }
    : { pieces: [`from ${body.model}.`] };
}

let fake: FakeOpenAIServer;
beforeAll(async () => {
  // vLLM started with --max-lora-rank 16.
  fake = await startFakeOpenAIServer(reply, { baseModel: 'base-model', maxLoraRank: 16 });
  await useBackend('wasm');
  for (const [name, r] of [
    ['v2', 4],
    ['v3', 4],
    ['big', 32],
  ] as const) {
    const model = tinyModel(1);
    attachLora(model, { r, alpha: 2 * r, targetModules: ['q_proj', 'v_proj'], seed: 1 });
    dirs[name] = join(root, name);
    await saveLoraAdapter(model, dirs[name]);
    model.dispose();
  }
});
afterAll(async () => {
  await fake?.close();
  rmSync(root, { recursive: true, force: true });
});

const post = (url: string, path: string, body: unknown) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

interface SessionResult {
  turns: { attempt: number; policyVersion: string; text: string }[];
}

/** A session over HTTP whose constraint ("zebra") no reply meets, so it runs every attempt. */
async function runSession(url: string, prompt: string, maxAttempts = 1): Promise<SessionResult> {
  const response = await post(url, '/v1/sessions', {
    prompt,
    constraints: [{ id: 'keywords:existence', kwargs: { keywords: ['zebra'] } }],
    maxAttempts,
  });
  expect(response.status).toBe(200);
  return (await response.json()) as SessionResult;
}

/** The models of the chat requests whose messages mention `marker`, in order. */
const modelsAsked = (marker: string) =>
  fake.requests
    .filter((r) => r.path === '/v1/chat/completions')
    .map((r) => r.body as ChatRequestBody)
    .filter((body) => body.messages.some((m) => m.content.includes(marker)))
    .map((body) => body.model);

const loadCalls = () => fake.requests.filter((r) => r.path === '/v1/load_lora_adapter').map((r) => r.body);

/** What another machine's promoter (a trainer, `corgi promote`) verifies with: nothing vLLM-side. */
const verifyOnly: PolicyLoader = async (_dir, version) =>
  createRemotePolicy({ baseURL: fake.baseURL, model: version });

interface Serving {
  db: Database;
  /** Another connection to the server's schema, as another machine's promoter would have. */
  other: Database;
  served: ServedPolicy;
  server: RunningServer;
  /** What the server's policy side logged. */
  lines: string[];
}

/**
 * In a describe block: before its tests, a server on the policy `spec()`, wired as `corgi serve`
 * wires it, on a test schema of its own; after them, all of it closed. The returned object is filled
 * in by then.
 */
function useServing(spec: () => string): Serving {
  const serving = { lines: [] as string[] } as Serving;
  beforeAll(async () => {
    serving.db = await openTestDatabase();
    // pollMs 0: a promotion from another connection can only arrive by NOTIFY.
    serving.served = await startServedPolicy(serving.db, spec(), {
      pollMs: 0,
      logger: linesLogger(serving.lines),
    });
    serving.server = await startServer({
      db: serving.db,
      policy: serving.served.registry,
      port: 0,
      promotions: serving.served.promotions,
      security: NO_RATE_LIMITS,
    });
    serving.other = await openDatabase({
      url: TEST_DATABASE_URL,
      schema: serving.db.schema,
      migrate: false,
      poolSize: 2,
    });
  });
  afterAll(async () => {
    await serving.server?.close();
    await serving.served?.promotions.close();
    await serving.served?.registry.close();
    await serving.other?.close();
    await serving.db?.close();
  });
  return serving;
}

describe('a server serving vllm: follows promotions by loading adapters into vLLM', () => {
  const app = useServing(() => `vllm:${fake.baseURL}#base-model`);
  const { lines } = app;

  it('starts on the base model, recorded under its spec as the first live version', async () => {
    expect(await (await fetch(`${app.server.url}/v1/policy`)).json()).toMatchObject({
      version: 'base-model',
      status: 'promoted',
    });
    expect(await getPolicyVersion(app.db.pool, 'base-model')).toMatchObject({
      checkpointPath: `vllm:${fake.baseURL}#base-model`,
      checksum: null,
    });
    const session = await runSession(app.server.url, 'Write about a cat (base).');
    expect(session.turns.map((t) => t.policyVersion)).toEqual(['base-model']);
    expect(modelsAsked('(base)')).toEqual(['base-model']);
    expect(loadCalls()).toEqual([]);
  });

  it('promotes through the admin route: loads the adapter, then new attempts name it as the model', async () => {
    const response = await post(app.server.url, '/v1/admin/promote', { checkpoint: dirs.v2 });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      version: 'v2',
      previous: 'base-model',
      changed: true,
      serving: 'v2',
    });
    expect(loadCalls()).toEqual([{ lora_name: 'v2', lora_path: dirs.v2 }]);
    expect(fake.adapters.get('v2')?.config).toMatchObject({ peft_type: 'LORA', r: 4 });

    const session = await runSession(app.server.url, 'Write about a cat (after v2).');
    expect(session.turns).toMatchObject([{ policyVersion: 'v2', text: 'from v2.' }]);
    expect(modelsAsked('(after v2)')).toEqual(['v2']);
    expect(lines.join('\n')).toMatch(/now serving v2 \(was base-model\)/);
  });

  it('on NOTIFY from another connection, swaps between attempts: the attempt in flight finishes on its version', async () => {
    // Attempt 1 streams for ~2 s on v2; the promotion lands while it does.
    const inFlight = runSession(app.server.url, 'Write a slow story (in flight).', 2);
    await expect.poll(() => modelsAsked('(in flight)').length, { timeout: 10_000 }).toBe(1);
    await promote(app.other, { checkpoint: dirs.v3 }, { load: verifyOnly });
    await expect.poll(() => app.served.registry.version, { timeout: 10_000 }).toBe('v3');
    expect(loadCalls().at(-1)).toEqual({ lora_name: 'v3', lora_path: dirs.v3 });

    const session = await inFlight;
    expect(session.turns.map((t) => t.policyVersion)).toEqual(['v2', 'v3']);
    // The first attempt streamed to its end on v2; the second asked vLLM for the new adapter.
    expect(session.turns[0].text).toBe(Array.from({ length: 10 }, (_, i) => `v2-${i} `).join(''));
    expect(modelsAsked('(in flight)')).toEqual(['v2', 'v3']);
    expect((await runSession(app.server.url, 'Write about a cat (after v3).')).turns[0].policyVersion).toBe(
      'v3',
    );
  }, 30_000);

  it('rolls back by pointing back: v2 (loaded again, which vLLM finds done), then the base model', async () => {
    const calls = loadCalls().length;
    let response = await post(app.server.url, '/v1/admin/rollback', { reason: 'test' });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ version: 'v2', previous: 'v3', serving: 'v2' });
    expect(loadCalls().slice(calls)).toEqual([{ lora_name: 'v2', lora_path: dirs.v2 }]);
    expect((await runSession(app.server.url, 'Write about a cat (back to v2).')).turns[0].policyVersion).toBe(
      'v2',
    );
    expect(modelsAsked('(back to v2)')).toEqual(['v2']);

    response = await post(app.server.url, '/v1/admin/rollback', {});
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      version: 'base-model',
      previous: 'v2',
      serving: 'base-model',
    });
    // The base model needs no adapter: no call.
    expect(loadCalls().length).toBe(calls + 1);
    expect((await runSession(app.server.url, 'Write about a cat (base again).')).turns[0].policyVersion).toBe(
      'base-model',
    );
    expect(modelsAsked('(base again)')).toEqual(['base-model']);
  });

  it('when vLLM refuses, keeps serving its version and says why (admin route, then NOTIFY)', async () => {
    // The admin route: 502 with vLLM's reason; nothing recorded, nothing swapped.
    const response = await post(app.server.url, '/v1/admin/promote', { checkpoint: dirs.big });
    expect(response.status).toBe(502);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('upstream_error');
    expect(error.message).toMatch(
      /^checkpoint: "big" cannot be served: vLLM refused to load adapter "big" \(400\): LoRA rank 32 is greater than max_lora_rank 16\.$/,
    );
    expect(await getPolicyVersion(app.db.pool, 'big')).toBeNull();
    expect(app.served.registry.version).toBe('base-model');
    expect(lines.at(-1)).toMatch(
      /^\[policy\] promote refused, staying on base-model: checkpoint: .*LoRA rank 32/,
    );

    // Another connection promotes it anyway: the database says "big", this server stays and records why.
    await promote(app.other, { checkpoint: dirs.big }, { load: verifyOnly });
    await expect
      .poll(
        () =>
          lines.some((line) =>
            /^\[policy\] notify: staying on base-model: version: .*LoRA rank 32/.test(line),
          ),
        {
          timeout: 10_000,
        },
      )
      .toBe(true);
    const history = (await (await fetch(`${app.server.url}/v1/admin/policy-versions`)).json()) as {
      live: string;
      serving: string;
      failure: { version: string; reason: string } | null;
    };
    expect(history).toMatchObject({ live: 'big', serving: 'base-model', failure: { version: 'big' } });
    expect(history.failure?.reason).toMatch(/vLLM refused to load adapter "big" \(400\)/);
    // The candidate is not blamed for what this deployment's vLLM refused.
    expect((await getPolicyVersion(app.db.pool, 'big'))?.refusedReason).toBeNull();
    const session = await runSession(app.server.url, 'Write about a cat (after refusal).');
    expect(session.turns[0].policyVersion).toBe('base-model');
    expect(modelsAsked('(after refusal)')).toEqual(['base-model']);
  });
});

describe('remotePromotionLoader', () => {
  const spec = () => parsePolicySpec(`vllm:${fake.baseURL}#base-model`) as RemotePolicySpec;

  it('reports an unreachable vLLM as upstream_error', async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const load = remotePromotionLoader({ ...spec(), baseURL: `http://127.0.0.1:${closed}/v1` });
    const attempt = load(dirs.v2, 'v2');
    await expect(attempt).rejects.toBeInstanceOf(RemotePromotionError);
    await expect(attempt).rejects.toMatchObject({
      code: 'upstream_error',
      message: expect.stringMatching(
        /^cannot reach vLLM at http:\/\/127\.0\.0\.1:\d+\/v1\/load_lora_adapter: .*ECONNREFUSED/,
      ),
    });
  });

  it('refuses a directory without a LoRA adapter, and another base model, without calling vLLM', async () => {
    const calls = loadCalls().length;
    await expect(remotePromotionLoader(spec())(root, 'full')).rejects.toMatchObject({
      code: 'promotion_unsupported',
      message: expect.stringMatching(
        /holds no LoRA adapter \(adapter_config\.json, adapter_model\.safetensors missing\)/,
      ),
    });
    await expect(
      remotePromotionLoader(spec())(`vllm:${fake.baseURL}#other-model`, 'other-model'),
    ).rejects.toMatchObject({ code: 'promotion_unsupported' });
    expect(loadCalls().length).toBe(calls);
  });
});

describe('a server serving a plain openai: endpoint', () => {
  const app = useServing(() => `openai:${fake.baseURL}#base-model`);
  const { lines } = app;

  it('refuses a promotion with 409 promotion_unsupported, keeps serving, and logs why', async () => {
    expect(lines[0]).toMatch(
      /is a plain OpenAI-compatible endpoint: this server serves base-model whatever is promoted/,
    );
    const calls = loadCalls().length;
    const response = await post(app.server.url, '/v1/admin/promote', { checkpoint: dirs.v2 });
    expect(response.status).toBe(409);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('promotion_unsupported');
    expect(error.message).toMatch(
      /^checkpoint: "v2" cannot be served: openai:http:\/\/\S+#base-model is a plain OpenAI-compatible endpoint, which cannot load a version at run time: servers on it keep serving base-model\./,
    );
    expect(loadCalls().length).toBe(calls);
    expect(await getPolicyVersion(app.db.pool, 'v2')).toBeNull();
    expect(lines.at(-1)).toMatch(/^\[policy\] promote refused, staying on base-model: /);

    // A promotion made elsewhere: logged, not pretended.
    await promote(app.other, { checkpoint: dirs.v3 }, { load: verifyOnly });
    await expect
      .poll(
        () =>
          lines.some((line) =>
            /^\[policy\] notify: staying on base-model: .*plain OpenAI-compatible/.test(line),
          ),
        {
          timeout: 10_000,
        },
      )
      .toBe(true);
    const session = await runSession(app.server.url, 'Write about a cat (plain openai).');
    expect(session.turns[0].policyVersion).toBe('base-model');
    expect(modelsAsked('(plain openai)')).toEqual(['base-model']);
  });
});

describe('corgi serve with CORGI_POLICY=vllm:... on the embedded database', () => {
  const dataRoot = mkdtempSync(join(tmpdir(), 'corgi-serve-vllm-'));
  let serve: ServeProcess | undefined;
  afterAll(async () => {
    await stopGently(serve);
    rmSync(dataRoot, { recursive: true, force: true });
  });

  it('promotes through the admin route: vLLM loads the adapter and sessions move to it', async () => {
    const env = corgiEnv(join(dataRoot, 'data'), {
      CORGI_POLICY: `vllm:${fake.baseURL}#base-model`,
      CORGI_BACKEND: 'cpu',
    });
    serve = await startServe([], env, { timeoutMs: 60_000 });
    const { url } = serve;
    expect(serve.stderr()).toMatch(/policy base-model, database embedded/);
    // The fake still has v2 and v3 loaded from the tests above: a fresh name shows this server's call.
    const response = await post(url, '/v1/admin/promote', { checkpoint: dirs.v3, version: 'v3-embedded' });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ version: 'v3-embedded', serving: 'v3-embedded' });
    expect(loadCalls().at(-1)).toEqual({ lora_name: 'v3-embedded', lora_path: dirs.v3 });
    const session = await runSession(url, 'Write about a cat (embedded).');
    expect(session.turns[0].policyVersion).toBe('v3-embedded');
    expect(modelsAsked('(embedded)')).toEqual(['v3-embedded']);
    expect(serve.stderr()).toMatch(/now serving v3-embedded \(was base-model\)/);
  }, 90_000);
});
