/**
 * Safe tar extraction into a directory of a root (ADD's local archives, tar build contexts):
 * merges like `tar -x` (the archive wins conflicts, directories merge), and every entry, link
 * target and parent is resolved inside the root, so no archive can write outside it.
 * Compression is detected by content: gzip (zlib), bzip2/xz/zstd (the system binaries).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { StowageError } from '../../util/errors.js';
import { mkdirAllInRoot, resolveInRoot } from './in-root.js';

export type Compression = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';

/** Compression from the first bytes of a file (pure). */
export function compressionOf(head: Uint8Array): Compression {
  const b = (i: number) => head[i];
  if (b(0) === 0x1f && b(1) === 0x8b) return 'gzip';
  if (b(0) === 0x42 && b(1) === 0x5a && b(2) === 0x68) return 'bzip2';
  if (b(0) === 0xfd && b(1) === 0x37 && b(2) === 0x7a && b(3) === 0x58 && b(4) === 0x5a && b(5) === 0x00) return 'xz';
  if (b(0) === 0x28 && b(1) === 0xb5 && b(2) === 0x2f && b(3) === 0xfd) return 'zstd';
  return 'none';
}

/** Whether 512 bytes are a tar header: its checksum is right (what Go's tar.Reader.Next checks). */
export function isTarHeader(block: Uint8Array): boolean {
  if (block.length < 512) return false;
  let allZero = true;
  for (let i = 0; i < 512; i++) if (block[i] !== 0) allZero = false;
  if (allZero) return false;
  const field = Buffer.from(block.subarray(148, 156)).toString('latin1').replace(/[\0 ]+$/, '').replace(/^[\0 ]+/, '');
  if (!/^[0-7]+$/.test(field)) return false;
  const want = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  return want === unsigned || want === signed;
}

const BINARIES: Record<'bzip2' | 'xz' | 'zstd', string> = { bzip2: 'bzip2', xz: 'xz', zstd: 'zstd' };

/** A readable of the decompressed bytes of a file; the child process (if any) ends with it. */
export function openDecompressed(file: string, compression: Compression, signal: AbortSignal): Readable {
  switch (compression) {
    case 'none':
      return createReadStream(file, { signal });
    case 'gzip': {
      const out = new PassThrough();
      pipeline(createReadStream(file, { signal }), zlib.createGunzip(), out).catch((e: unknown) => out.destroy(e as Error));
      return out;
    }
    case 'bzip2':
    case 'xz':
    case 'zstd': {
      const bin = BINARIES[compression];
      const child = spawn(bin, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'], signal });
      const out = new PassThrough();
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        if (stderr.length < 4096) stderr += d.toString();
      });
      child.on('error', (e: NodeJS.ErrnoException) => {
        out.destroy(
          e.code === 'ENOENT'
            ? new StowageError('copy/decompressor-missing', `cannot decompress ${path.basename(file)}: "${bin}" is not installed`, {
                hint: `install it (Debian: apt-get install ${compression === 'xz' ? 'xz-utils' : bin})`,
              })
            : e,
        );
      });
      const input = createReadStream(file, { signal });
      input.on('error', (e) => out.destroy(e));
      input.pipe(child.stdin).on('error', () => {
        /* EPIPE when the reader stops early; the exit status tells what happened */
      });
      child.stdout.pipe(out, { end: false });
      let exited = false;
      let stdoutEnded = false;
      let code: number | null = null;
      const maybeEnd = () => {
        if (!exited || !stdoutEnded) return;
        if (code === 0) out.end();
        else out.destroy(new StowageError('copy/decompress-failed', `${bin} failed on ${path.basename(file)}: ${stderr.trim()}`));
      };
      child.stdout.on('end', () => {
        stdoutEnded = true;
        maybeEnd();
      });
      child.on('exit', (c) => {
        exited = true;
        code = c;
        maybeEnd();
      });
      out.on('close', () => {
        if (!exited) child.kill();
      });
      return out;
    }
  }
}

async function readHead(stream: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let len = 0;
  try {
    for await (const c of stream) {
      chunks.push(c as Buffer);
      len += (c as Buffer).length;
      if (len >= n) break;
    }
  } catch {
    // A corrupt stream is simply not an archive.
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, n);
}

/** The first bytes of a file, enough for every compression magic number. */
async function readMagic(file: string): Promise<Buffer> {
  const fh = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(8);
    const { bytesRead } = await fh.read(buf, 0, 8, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * How a local file is to be extracted, or undefined if it is not a (possibly compressed) tar
 * archive. Detection is by content only, never the file name; an empty file is not an archive.
 */
export async function detectArchive(file: string, signal: AbortSignal): Promise<Compression | undefined> {
  const st = await fs.lstat(file);
  if (!st.isFile() || st.size === 0) return undefined;
  const head = await readMagic(file);
  const compression = compressionOf(head);
  let block: Buffer;
  try {
    block = await readHead(openDecompressed(file, compression, signal), 512);
  } catch {
    return undefined;
  }
  return isTarHeader(block) ? compression : undefined;
}

export interface ExtractOptions {
  /** Canonical root (a rootfs or a context temp dir); nothing is written outside it. */
  root: string;
  /** Directory inside the root to extract into (created if missing). */
  destRel: string;
  /** Keep the archive's numeric uid/gid (ADD) rather than the extracting user. */
  keepOwners: boolean;
  /** `--chown`: every entry gets this owner. */
  chown?: { uid: number; gid: number };
  signal: AbortSignal;
}

/** Extracts a tar file, detecting compression by content. */
export async function extractTarFile(opts: ExtractOptions & { archivePath: string }): Promise<void> {
  const head = await readMagic(opts.archivePath);
  await extractTarStream(openDecompressed(opts.archivePath, compressionOf(head), opts.signal), opts);
}

const tmpName = (dir: string) => path.join(dir, `.stowage-tmp-${randomBytes(6).toString('hex')}`);

/** Extracts an uncompressed tar stream (see ExtractOptions). */
export async function extractTarStream(input: Readable, opts: ExtractOptions): Promise<void> {
  const { root, signal } = opts;
  const dest = await mkdirAllInRoot(root, opts.destRel, {
    mode: 0o755,
    uid: opts.chown?.uid ?? 0,
    gid: opts.chown?.gid ?? 0,
    mkdir: fs.mkdir,
    chown: fs.chown,
    chmod: fs.chmod,
  });
  // tar-stream (and its five dependencies) only when a tar is really extracted: most builds never do.
  const tar = await import('tar-stream');
  const extract = tar.extract();
  const dirTimes: { host: string; mtime: Date }[] = [];
  input.on('error', (e) => extract.destroy(e));
  input.pipe(extract);
  try {
    for await (const entry of extract) {
      signal.throwIfAborted();
      const h = entry.header;
      const rel = path.posix.normalize('/' + h.name).replace(/^\/+/, '').replace(/\/+$/, '');
      if (rel === '' || rel === '.') {
        entry.resume();
        continue;
      }
      const parentRel = path.posix.join(dest.rel, path.posix.dirname(rel));
      const parent = await mkdirAllInRoot(root, parentRel, {
        mode: 0o755,
        uid: opts.chown?.uid ?? 0,
        gid: opts.chown?.gid ?? 0,
        mkdir: fs.mkdir,
        chown: fs.chown,
        chmod: fs.chmod,
      });
      const target = path.join(parent.hostPath, path.posix.basename(rel));
      const type = h.type ?? 'file';
      const existing = await fs.lstat(target).catch(() => undefined);
      if (existing && !(existing.isDirectory() && type === 'directory')) {
        await fs.rm(target, { recursive: true, force: true });
      }
      const mode = (h.mode ?? 0o644) & 0o7777;
      const uid = opts.chown?.uid ?? (opts.keepOwners ? (h.uid ?? 0) : process.getuid?.() ?? 0);
      const gid = opts.chown?.gid ?? (opts.keepOwners ? (h.gid ?? 0) : process.getgid?.() ?? 0);
      const mtime = h.mtime ?? new Date();
      switch (type) {
        case 'directory': {
          if (!existing) await fs.mkdir(target, 0o700);
          await fs.lchown(target, uid, gid);
          await fs.chmod(target, mode);
          dirTimes.push({ host: target, mtime });
          entry.resume();
          break;
        }
        case 'file':
        case 'contiguous-file': {
          const tmp = tmpName(parent.hostPath);
          try {
            await pipeline(entry, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }), { signal });
            await fs.lchown(tmp, uid, gid);
            await fs.chmod(tmp, mode);
            await fs.utimes(tmp, mtime, mtime);
            await fs.rename(tmp, target);
          } catch (e) {
            await fs.rm(tmp, { force: true });
            throw e;
          }
          break;
        }
        case 'symlink': {
          entry.resume();
          const tmp = tmpName(parent.hostPath);
          await fs.symlink(h.linkname ?? '', tmp);
          await fs.lchown(tmp, uid, gid);
          await fs.lutimes(tmp, mtime, mtime);
          await fs.rename(tmp, target);
          break;
        }
        case 'link': {
          entry.resume();
          // The link target is a path inside this extraction, resolved inside the root.
          const linkRel = path.posix.join(dest.rel, path.posix.normalize('/' + (h.linkname ?? '')));
          const src = await resolveInRoot(root, linkRel, { followFinal: false });
          const sst = await fs.lstat(src.hostPath).catch(() => undefined);
          if (!sst || sst.isDirectory()) {
            throw new StowageError('copy/bad-archive', `archive entry ${h.name} is a hard link to missing ${h.linkname}`);
          }
          const tmp = tmpName(parent.hostPath);
          await fs.link(src.hostPath, tmp);
          await fs.rename(tmp, target);
          break;
        }
        case 'character-device':
        case 'block-device':
        case 'fifo': {
          entry.resume();
          const kind = type === 'fifo' ? 'p' : type === 'character-device' ? 'c' : 'b';
          const args = type === 'fifo' ? [target, kind] : [target, kind, String(h.devmajor ?? 0), String(h.devminor ?? 0)];
          await runMknod(args, signal);
          await fs.lchown(target, uid, gid);
          await fs.chmod(target, mode);
          await fs.utimes(target, mtime, mtime);
          break;
        }
        default:
          // pax/gnu meta entries are consumed by tar-stream; anything else is skipped.
          entry.resume();
          break;
      }
    }
  } catch (e) {
    input.destroy();
    if (e instanceof StowageError || (e as Error).name === 'AbortError') throw e;
    throw new StowageError('copy/bad-archive', `cannot extract archive: ${(e as Error).message}`, { cause: e });
  }
  // Directory mtimes last: writing their children changed them.
  for (const d of dirTimes.reverse()) await fs.utimes(d.host, d.mtime, d.mtime);
}

function runMknod(args: string[], signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('mknod', args, { stdio: ['ignore', 'ignore', 'pipe'], signal });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new StowageError('copy/mknod-failed', `mknod ${args.join(' ')} failed: ${err.trim()}`)),
    );
  });
}
