/**
 * `corgi convert <checkpoint-dir> --out model.gguf [--type f32|q8_0] [--json]`: an HF-layout Llama
 * checkpoint (its PEFT adapter merged, when it has one) as a GGUF file llama.cpp loads. A thin shell
 * over `convertCheckpointToGguf`.
 */

import { type Command, InvalidArgumentError } from 'commander';
// Types only: TensorFlow.js loads when the command runs, not with every `corgi` invocation.
import type { GgufOutputType } from '../model/gguf/checkpoint-to-gguf.ts';
import { backendOptionsFromEnv } from './command-env.ts';

/** Exit code for input the command refused. */
const EXIT_BAD_INPUT = 2;

function parseType(value: string): GgufOutputType {
  if (value !== 'f32' && value !== 'q8_0')
    throw new InvalidArgumentError(`expected f32 or q8_0, got "${value}"`);
  return value;
}

interface ConvertCommandOptions {
  out: string;
  type: GgufOutputType;
  name?: string;
  json?: boolean;
}

/** Adds `corgi convert` to `program`. */
export function registerConvertCommand(program: Command): Command {
  return program
    .command('convert')
    .description('Convert a Llama checkpoint directory (HF layout) to a GGUF file for llama.cpp')
    .argument('<checkpoint-dir>', 'directory with config.json, model.safetensors and tokenizer.json')
    .requiredOption('--out <file>', 'the GGUF file to write (replaced atomically)')
    .option('--type <type>', 'tensor type: f32, or q8_0 for the 2-D weights', parseType, 'f32')
    .option('--name <name>', 'general.name in the file (default: the directory name)')
    .option(
      '--json',
      'print {"path","type","tensors","parameters","bytes","merged_adapter"} as one JSON line',
    )
    .action(async (dir: string, options: ConvertCommandOptions) => {
      const [
        { basename, resolve },
        { stat },
        { selectBackend },
        { CheckpointError },
        { GgufWriteError },
        convert,
      ] = await Promise.all([
        import('node:path'),
        import('node:fs/promises'),
        import('../model/tfjs/backend.ts'),
        import('../model/checkpoint.ts'),
        import('../model/gguf/writer.ts'),
        import('../model/gguf/checkpoint-to-gguf.ts'),
      ]);
      await selectBackend({ ...backendOptionsFromEnv(), log: () => {} });
      try {
        const result = await convert.convertCheckpointToGguf(dir, options.out, {
          type: options.type,
          name: options.name ?? basename(resolve(dir)),
        });
        const bytes = (await stat(options.out)).size;
        if (options.json) {
          process.stdout.write(
            `${JSON.stringify({
              path: resolve(result.path),
              type: result.type,
              tensors: result.tensors,
              parameters: result.parameters,
              bytes,
              merged_adapter: result.mergedAdapter,
            })}\n`,
          );
        } else {
          process.stdout.write(
            `wrote ${options.out}: ${result.type}, ${result.tensors} tensors, ${result.parameters} parameters, ${bytes} bytes${result.mergedAdapter ? ' (adapter merged)' : ''}\n`,
          );
        }
      } catch (error) {
        if (!CheckpointError.isInstance(error) && !GgufWriteError.isInstance(error)) throw error;
        const message = (error as Error).message;
        if (options.json) process.stdout.write(`${JSON.stringify({ error: message })}\n`);
        else process.stderr.write(`corgi convert: ${message}\n`);
        process.exitCode = EXIT_BAD_INPUT;
      }
    });
}
