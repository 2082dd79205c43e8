import { describe, expect, it } from 'vitest';
import { defaultThreads, gpuChoice } from '../../src/policy/llama-runtime.ts';

describe('llama.cpp runtime settings', () => {
  it('takes the backend from CORGI_LLAMA_GPU and refuses unknown values', () => {
    expect(gpuChoice({ CORGI_LLAMA_GPU: 'false' })).toBe(false);
    expect(gpuChoice({ CORGI_LLAMA_GPU: 'cuda' })).toBe('cuda');
    expect(gpuChoice({ CORGI_LLAMA_GPU: 'auto' })).toBe('auto');
    expect(() => gpuChoice({ CORGI_LLAMA_GPU: 'tpu' })).toThrow(
      /CORGI_LLAMA_GPU must be auto, false, cuda, vulkan or metal, got "tpu"/,
    );
  });

  it('takes the thread count from CORGI_LLAMA_THREADS and refuses non-integers', () => {
    expect(defaultThreads({ CORGI_LLAMA_THREADS: '3' })).toBe(3);
    expect(defaultThreads({})).toBeGreaterThanOrEqual(1);
    expect(() => defaultThreads({ CORGI_LLAMA_THREADS: 'two' })).toThrow(
      /CORGI_LLAMA_THREADS must be a positive integer, got "two"/,
    );
  });
});
