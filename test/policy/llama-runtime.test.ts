import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { runtimeSettingsFromEnv } from '../../src/cli/command-env.ts';
import { configureRuntime, runtimeSettings } from '../../src/common/runtime-settings.ts';
import { defaultThreads } from '../../src/policy/llama-runtime.ts';

describe('llama.cpp runtime settings', () => {
  const before = { ...runtimeSettings() };
  afterEach(() => configureRuntime({ llamaThreads: before.llamaThreads ?? availableParallelism() }));

  it('the commands take the backend from CORGI_LLAMA_GPU and refuse unknown values', () => {
    expect(runtimeSettingsFromEnv({ CORGI_LLAMA_GPU: 'false' }).llamaGpu).toBe(false);
    expect(runtimeSettingsFromEnv({ CORGI_LLAMA_GPU: 'cpu' }).llamaGpu).toBe(false);
    expect(runtimeSettingsFromEnv({ CORGI_LLAMA_GPU: 'cuda' }).llamaGpu).toBe('cuda');
    expect(runtimeSettingsFromEnv({}).llamaGpu).toBeUndefined();
    expect(() => runtimeSettingsFromEnv({ CORGI_LLAMA_GPU: 'tpu' })).toThrow(
      /CORGI_LLAMA_GPU must be auto, false, cuda, vulkan or metal, got "tpu"/,
    );
  });

  it('the commands take thread counts and the check budget as positive integers, naming a bad variable', () => {
    expect(runtimeSettingsFromEnv({ CORGI_LLAMA_THREADS: '3', CORGI_CHECK_THREADS: '1' })).toMatchObject({
      llamaThreads: 3,
      checkThreads: 1,
      checkTimeoutMs: undefined,
    });
    expect(() => runtimeSettingsFromEnv({ CORGI_LLAMA_THREADS: 'two' })).toThrow(
      /CORGI_LLAMA_THREADS must be a positive integer, got "two"/,
    );
    expect(() => runtimeSettingsFromEnv({ CORGI_CHECK_TIMEOUT_MS: '0' })).toThrow(
      /CORGI_CHECK_TIMEOUT_MS must be a positive integer, got "0"/,
    );
  });

  it('a policy without a thread count decodes with the configured default; a malformed one is refused', () => {
    configureRuntime({ llamaThreads: 3 });
    expect(defaultThreads()).toBe(3);
    configureRuntime({ llamaThreads: undefined });
    expect(defaultThreads()).toBe(3);
    expect(() => configureRuntime({ llamaThreads: 0 })).toThrow(
      /llamaThreads must be a positive integer, got 0/,
    );
    expect(() => configureRuntime({ llamaGpu: 'tpu' as never })).toThrow(/llamaGpu must be auto, false/);
    expect(defaultThreads()).toBe(3);
  });
});
