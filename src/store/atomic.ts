import { createHash, randomBytes } from 'node:crypto';
import type { WriteStream } from 'node:fs';
import { open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '../image/digest.js';
import { StowageError } from '../util/errors.js';

/**
 * A write stream on a freshly created file. The file exists when this resolves, so a cleanup
 * after a failed pipeline cannot race the stream's lazy open and leave the file behind.
 */
export async function createExclusiveWriteStream(path: string): Promise<WriteStream> {
  const fh = await open(path, 'wx', 0o644);
  return fh.createWriteStream();
}

/** A temp name next to `finalPath` (same filesystem, so rename is atomic). */
export function siblingTempPath(finalPath: string): string {
  return join(dirname(finalPath), `.${basename(finalPath)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/** Writes small bytes to a temp name, fsyncs, renames into place. */
export async function writeFileAtomic(finalPath: string, bytes: Uint8Array | string, options: { tempPath?: string } = {}): Promise<void> {
  const tmp = options.tempPath ?? siblingTempPath(finalPath);
  try {
    await writeFile(tmp, bytes, { flag: 'wx', mode: 0o644 });
    await syncFile(tmp);
    await rename(tmp, finalPath);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Streams `source` to `finalPath` through a temp file, checking digest and size before the rename,
 * so `finalPath` either does not exist or holds exactly the expected bytes.
 */
export async function writeVerifiedFile(
  source: Readable,
  finalPath: string,
  options: { expected: Digest; expectedSize: number; tempPath?: string; signal?: AbortSignal },
): Promise<void> {
  const tmp = options.tempPath ?? siblingTempPath(finalPath);
  const hash = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, callback) {
      size += chunk.length;
      if (size > options.expectedSize) {
        callback(mismatch('size-mismatch', `${options.expected} is longer than its descriptor's ${options.expectedSize} bytes`));
        return;
      }
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(source, meter, await createExclusiveWriteStream(tmp), options.signal ? { signal: options.signal } : {});
    const digest = `sha256:${hash.digest('hex')}`;
    if (digest !== options.expected) throw mismatch('digest-mismatch', `content hashes to ${digest}, expected ${options.expected}`);
    if (size !== options.expectedSize) throw mismatch('size-mismatch', `${options.expected} is ${size} bytes, its descriptor says ${options.expectedSize}`);
    await syncFile(tmp);
    await rename(tmp, finalPath);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

function mismatch(code: string, message: string): StowageError {
  return new StowageError(`store/${code}`, message, { hint: 'the source blob is corrupt; nothing was written for it' });
}

/** Size of a regular file, or undefined if there is none. */
export async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Reads a small file whole, refusing ones bigger than `limit` (manifests and configs, never layers). */
export async function readSmallFile(path: string, limit: number, what: string): Promise<Uint8Array> {
  const size = await fileSize(path);
  if (size === undefined) throw new StowageError('store/blob-not-found', `${what} is missing: ${path}`);
  if (size > limit) throw new StowageError('store/too-large', `${what} is ${size} bytes, more than the ${limit}-byte limit: ${path}`);
  return new Uint8Array(await readFile(path));
}

/**
 * Runs `fn` holding an exclusive lock file (O_EXCL create), for read-modify-write of shared files
 * such as a layout's index.json that several builds may update at once. A lock whose owner process
 * is gone, or that is older than `staleMs`, is broken.
 */
export async function withLockFile<T>(lockPath: string, fn: () => Promise<T>, options: { signal?: AbortSignal; staleMs?: number; timeoutMs?: number } = {}): Promise<T> {
  const staleMs = options.staleMs ?? 60_000;
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  let delay = 5;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const fh = await open(lockPath, 'wx', 0o644);
      try {
        await fh.writeFile(`${process.pid}\n`);
      } finally {
        await fh.close();
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (await isStaleLock(lockPath, staleMs)) {
      await rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new StowageError('store/locked', `timed out waiting for the lock ${lockPath}`, {
        hint: 'another stowage process is writing there; if none is, delete the lock file',
      });
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

async function isStaleLock(lockPath: string, staleMs: number): Promise<boolean> {
  try {
    const [content, s] = await Promise.all([readFile(lockPath, 'utf8'), stat(lockPath)]);
    const pid = Number.parseInt(content.trim(), 10);
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid) {
      try {
        process.kill(pid, 0);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ESRCH') return true;
      }
    }
    return Date.now() - s.mtimeMs > staleMs;
  } catch (e) {
    // Vanished between our create attempt and now: not stale, just retry.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Data on disk before the rename makes it visible, so a crash cannot expose a truncated file. */
export async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Makes everything written on the file system holding `dir` durable with one syncfs(2) (coreutils
 * `sync --file-system`): one call instead of an fsync per file when thousands of small blobs were
 * written. Where that command is missing, every regular file under `dir` (and `dir` itself) is
 * fsynced instead.
 */
export async function syncFileSystem(dir: string, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  // Loaded here: most runs never sync a tree, and a built-in costs its compile at every start.
  const { execFile } = await import('node:child_process');
  const viaSyncfs = await new Promise<boolean>((resolve) => {
    execFile('sync', ['--file-system', dir], { ...(signal ? { signal } : {}) }, (err) => resolve(err === null));
  });
  signal?.throwIfAborted();
  if (viaSyncfs) return;
  await syncTree(dir);
}

async function syncTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await syncTree(p);
    else if (e.isFile()) await syncFile(p);
  }
  await syncFile(dir);
}
