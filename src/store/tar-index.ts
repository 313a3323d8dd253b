import { open, type FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { StowageError } from '../util/errors.js';

/**
 * A random-access index of an (uncompressed) tar file: where each member's data starts and how
 * long it is, so members can be streamed from the file by range without extracting anything.
 * Understands ustar, PAX (`x`) and GNU long names (`L`/`K`), which is what docker, podman and
 * skopeo write.
 */
export interface TarMember {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'link' | 'other';
  /** Byte offset of the member's data in the file. */
  offset: number;
  size: number;
  linkname?: string;
}

const BLOCK = 512;

function cString(buf: Buffer, start: number, len: number): string {
  const slice = buf.subarray(start, start + len);
  const nul = slice.indexOf(0);
  return slice.subarray(0, nul < 0 ? len : nul).toString('utf8');
}

function parseNumber(buf: Buffer, start: number, len: number): number {
  const field = buf.subarray(start, start + len);
  // GNU base-256 for big values: high bit of the first byte set.
  if (field[0]! & 0x80) {
    let n = field[0]! & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + field[i]!;
    return n;
  }
  const s = cString(buf, start, len).trim();
  return s === '' ? 0 : Number.parseInt(s, 8);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = Number.parseInt(data.subarray(pos, space).toString('ascii'), 10);
    if (!Number.isSafeInteger(len) || len <= 0) break;
    const record = data.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

/** `./a//b` → `a/b`; members are looked up by this form. */
export function normalizeMemberName(name: string): string {
  const n = posix.normalize(name).replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  return n === '.' ? '' : n;
}

export async function indexTar(path: string, options: { signal?: AbortSignal } = {}): Promise<Map<string, TarMember>> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new StowageError('store/archive-not-found', `archive ${path} does not exist`, { cause: e });
    throw e;
  }
  const members = new Map<string, TarMember>();
  try {
    const fileSize = (await fh.stat()).size;
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let pending: { path?: string; linkpath?: string; size?: number } = {};
    for (;;) {
      options.signal?.throwIfAborted();
      const { bytesRead } = await fh.read(header, 0, BLOCK, pos);
      if (bytesRead < BLOCK) break; // no end-of-archive blocks: tolerate, as GNU tar does
      if (header.every((b) => b === 0)) break;
      if (cString(header, 257, 5) !== 'ustar' && !checksumOk(header)) {
        throw new StowageError('store/invalid-archive', `${path} is not a tar archive (bad header at byte ${pos})`);
      }
      const typeflag = String.fromCharCode(header[156]!);
      let size = parseNumber(header, 124, 12);
      if (pending.size !== undefined) size = pending.size;
      const dataOffset = pos + BLOCK;
      if (dataOffset + size > fileSize) throw new StowageError('store/invalid-archive', `${path} is truncated`);
      const next = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
      if (typeflag === 'x' || typeflag === 'L' || typeflag === 'K') {
        if (size > 1024 * 1024) throw new StowageError('store/invalid-archive', `${path} has an oversized extended header`);
        const data = Buffer.alloc(size);
        await fh.read(data, 0, size, dataOffset);
        if (typeflag === 'x') {
          const pax = parsePax(data);
          pending = {
            ...pending,
            ...(pax['path'] !== undefined ? { path: pax['path'] } : {}),
            ...(pax['linkpath'] !== undefined ? { linkpath: pax['linkpath'] } : {}),
            ...(pax['size'] !== undefined ? { size: Number.parseInt(pax['size'], 10) } : {}),
          };
        } else if (typeflag === 'L') pending = { ...pending, path: cString(data, 0, size) };
        else pending = { ...pending, linkpath: cString(data, 0, size) };
        pos = next;
        continue;
      }
      if (typeflag === 'g') {
        pos = next;
        continue;
      }
      let name = cString(header, 0, 100);
      const prefix = cString(header, 345, 155);
      if (prefix && cString(header, 257, 5) === 'ustar') name = `${prefix}/${name}`;
      if (pending.path !== undefined) name = pending.path;
      const linkname = pending.linkpath ?? cString(header, 157, 100);
      const type: TarMember['type'] =
        typeflag === '0' || typeflag === '\0' || typeflag === '7' ? 'file' : typeflag === '5' ? 'directory' : typeflag === '2' ? 'symlink' : typeflag === '1' ? 'link' : 'other';
      const member: TarMember = { name: normalizeMemberName(name), type, offset: dataOffset, size: type === 'file' ? size : 0 };
      if (type === 'symlink' || type === 'link') member.linkname = linkname;
      members.set(member.name, member);
      pending = {};
      pos = next;
    }
  } finally {
    await fh.close();
  }
  return members;
}

function checksumOk(header: Buffer): boolean {
  const stored = parseNumber(header, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum === stored;
}

/**
 * The regular file a member name leads to, following symlinks (relative to the member's directory)
 * and hardlinks inside the archive. Never touches the host filesystem.
 */
export function resolveMember(members: ReadonlyMap<string, TarMember>, name: string): TarMember | undefined {
  let current = normalizeMemberName(name);
  for (let hops = 0; hops < 16; hops++) {
    const m = members.get(current);
    if (m === undefined) return undefined;
    if (m.type === 'file') return m;
    if (m.type === 'symlink' && m.linkname !== undefined) {
      current = normalizeMemberName(m.linkname.startsWith('/') ? m.linkname : posix.join(posix.dirname(current), m.linkname));
    } else if (m.type === 'link' && m.linkname !== undefined) {
      current = normalizeMemberName(m.linkname);
    } else return undefined;
  }
  return undefined;
}
