/**
 * The worker side of `DataParallelTrainer` (train.ts): holds a replica of the model on its own wasm
 * instance, takes the weights the main thread sends with each step, and returns the gradients of
 * its share of the batch as transferred buffers.
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { type LlamaConfig, parseLlamaConfig } from '../../model/config.ts';
import { LlamaModel, llamaParameterShapes } from '../../model/llama.ts';
import { selectBackend } from '../../model/tfjs/backend.ts';
import { type FromWorker, lossAndGradients, type ToWorker } from './train.ts';

if (!parentPort) throw new Error('train-worker.ts runs as a worker_thread of DataParallelTrainer');
const port = parentPort;
let model: LlamaModel | null = null;

function reply(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

port.on('message', async (message: ToWorker) => {
  try {
    if (message.type === 'init') {
      await selectBackend({ preferred: message.backend ?? undefined, log: () => {} }); // the main thread's
      const config = parseLlamaConfig(message.config);
      const weights = new Map<string, tf.Tensor>();
      for (const [name, data] of Object.entries(message.weights)) {
        weights.set(name, tf.tensor(data, undefined, 'float32'));
      }
      // Shapes come from the config's parameter table; the constructor checks names and shapes.
      model = new LlamaModel(config, reshapeLike(config, weights));
      reply({ type: 'ready' });
      return;
    }
    if (!model) throw new Error('step before init');
    const m = model;
    for (const [name, data] of Object.entries(message.weights)) {
      const v = m.params.get(name);
      if (!v) throw new Error(`unknown parameter ${name}`);
      // assign() copies into the variable; the source tensor is ours to free, or every step leaks a model.
      const next = tf.tensor(data, v.shape, 'float32');
      v.assign(next);
      next.dispose();
    }
    const inputs = tf.tensor2d(message.inputs, [message.rows, message.cols], 'int32');
    const targets = tf.tensor2d(message.targets, [message.rows, message.cols], 'int32');
    const { loss, grads } = lossAndGradients(m, inputs, targets);
    const out: Record<string, Float32Array> = {};
    for (const [name, g] of grads) out[name] = new Float32Array(g.dataSync() as Float32Array); // ours to transfer
    tf.dispose([inputs, targets, ...grads.values()]);
    reply(
      { type: 'grads', loss, grads: out },
      Object.values(out).map((g) => g.buffer as ArrayBuffer),
    );
  } catch (error) {
    reply({ type: 'error', message: (error as Error).stack ?? String(error) });
  }
});

/** The flat arrays sent over, as tensors of the parameter table's shapes. */
function reshapeLike(config: LlamaConfig, flat: Map<string, tf.Tensor>): Map<string, tf.Tensor> {
  const shapes = llamaParameterShapes(config);
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of flat) {
    const shape = shapes.get(name);
    out.set(name, shape ? tf.reshape(t, shape) : t);
    if (shape) t.dispose();
  }
  return out;
}
