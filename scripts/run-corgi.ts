/**
 * Runs one `corgi` command for the scripts that chain them (experiment.ts): the
 * command line echoed on stderr with the script's name, the child's progress passed through,
 * its stdout kept (and written to `stdoutFile` when given), a non-zero exit turned into an error.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const corgi = resolve(import.meta.dirname, '../bin/corgi.js');

export function runCorgi(script: string, args: string[], stdoutFile?: string): Promise<void> {
  console.error(`${script}: corgi ${args.join(' ')}${stdoutFile ? ` > ${stdoutFile}` : ''}`);
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [corgi, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', fail);
    child.on('exit', (code) => {
      if (code !== 0) return fail(new Error(`corgi ${args[0]} exited with ${code}`));
      if (stdoutFile) writeFileSync(stdoutFile, out);
      done();
    });
  });
}
