/**
 * Preloaded into a child process (`node --import <this file> bin/corgi.js …`) to stop it inside the
 * real checkpoint writer (`saveCheckpoint`, src/model/checkpoint.ts) at a chosen point, so a test
 * can SIGKILL it exactly there. Killing "when the temporary directory appears" would race the
 * writer; this makes the kill land inside the write every time, without a test hook in the product.
 *
 * It wraps `node:fs/promises` (`syncBuiltinESMExports` updates the named imports of every module
 * loaded afterwards), and acts only on the temporary directory of a checkpoint whose final name
 * matches CORGI_FAULT_CHECKPOINT_MATCH (a regular expression; default: any):
 *
 *   CORGI_FAULT_CHECKPOINT_STAGE=mid-file       writes the first half of model.safetensors, fsyncs
 *                                               it, and stops there;
 *   CORGI_FAULT_CHECKPOINT_STAGE=before-rename  stops at the rename of the complete temporary
 *                                               directory (every file and checksums.sha256 fsynced).
 *
 * Having stopped it prints `[fault] <stage>: <temporary directory>` on stderr and waits for the kill.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { basename, dirname } from 'node:path';

const stage = process.env.CORGI_FAULT_CHECKPOINT_STAGE;
const match = new RegExp(process.env.CORGI_FAULT_CHECKPOINT_MATCH ?? '');
// saveCheckpoint's temporary directory: `.<name>.tmp-<pid>-<hex>`.
const TEMP = /^\.(.+)\.tmp-\d+-[0-9a-f]{8}$/;

const tempOf = (path) => {
  const found = TEMP.exec(basename(String(path)));
  return found && match.test(found[1]) ? String(path) : null;
};

/** Announces where the process stopped, then never returns (the test kills the process). */
function stopHere(dir) {
  process.stderr.write(`[fault] ${stage}: ${dir}\n`);
  // A pending promise alone would let the process exit once its other handles close.
  setInterval(() => {}, 1 << 30);
  return new Promise(() => {});
}

if (stage === 'mid-file' || stage === 'before-rename') {
  const fsp = createRequire(import.meta.url)('node:fs/promises');
  if (stage === 'mid-file') {
    const open = fsp.open;
    fsp.open = async (path, ...rest) => {
      const handle = await open(path, ...rest);
      const dir = tempOf(dirname(String(path)));
      if (!dir || basename(String(path)) !== 'model.safetensors') return handle;
      return new Proxy(handle, {
        get(target, property) {
          if (property !== 'writeFile') {
            const value = Reflect.get(target, property);
            return typeof value === 'function' ? value.bind(target) : value;
          }
          return async (content) => {
            const bytes = typeof content === 'string' ? Buffer.from(content) : content;
            await target.write(bytes.subarray(0, Math.floor(bytes.length / 2)));
            await target.sync();
            return stopHere(dir);
          };
        },
      });
    };
  } else {
    const rename = fsp.rename;
    fsp.rename = async (from, to) => {
      const dir = tempOf(from);
      return dir ? stopHere(dir) : rename(from, to);
    };
  }
  syncBuiltinESMExports();
}
