import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { sha256Digest, type Digest } from '../../src/image/digest.js';
import { FsBlobStore } from '../../src/store/blob-store.js';
import { resolveCacheDir } from '../../src/store/cache-dir.js';
import { isStowageError } from '../../src/util/errors.js';
import { tempDir } from './helpers.js';

const WRITER = fileURLToPath(new URL('./fixtures/blob-writer.ts', import.meta.url));
const CHUNK = 64 * 1024;

/** The bytes blob-writer.ts produces for `size`. */
function writerDigest(size: number): Digest {
  const h = createHash('sha256');
  for (let off = 0, i = 0; off < size; off += CHUNK, i++) h.update(Buffer.alloc(Math.min(CHUNK, size - off), i % 251));
  return `sha256:${h.digest('hex')}` as Digest;
}

function startWriter(cacheDir: string, mode: 'write' | 'hang', size: number, digest: Digest) {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, cacheDir, mode, String(size), digest], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, out, err })),
  );
  const sawOutput = (what: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => (out.includes(what) ? resolve() : undefined);
      child.stdout.on('data', check);
      child.on('exit', () => reject(new Error(`writer exited before "${what}": ${err}`)));
      check();
    });
  return { child, exited, sawOutput };
}

async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('a written blob is stored under blobs/sha256/<hex> and reads back', async (t) => {
  const store = await FsBlobStore.open(await tempDir(t));
  const data = Buffer.from('hello blob');
  const info = await store.write(Readable.from([data]));
  assert.deepEqual(info, { digest: sha256Digest(data), size: data.length });
  assert.equal(store.pathOf(info.digest), join(store.root, 'blobs', 'sha256', info.digest.slice(7)));
  assert.deepEqual(await readFile(store.pathOf(info.digest)), data);
  assert.deepEqual(await readAll(await store.openRead(info.digest)), data);
  assert.deepEqual(await store.stat(info.digest), info);
  assert.deepEqual(await readdir(join(store.root, 'tmp')), [], 'no temp file left behind');
  // Writing bytes that are already present with `expected` is a no-op that succeeds.
  assert.deepEqual(await store.write(data, { expected: info.digest, expectedSize: data.length }), info);
});

test('a digest or size mismatch is rejected and nothing is stored', async (t) => {
  const store = await FsBlobStore.open(await tempDir(t));
  const claimed = sha256Digest('what the descriptor says');
  await assert.rejects(
    store.write(Buffer.from('something else'), { expected: claimed }),
    (e) => isStowageError(e) && e.code === 'store/digest-mismatch',
  );
  const data = Buffer.from('right bytes');
  await assert.rejects(
    store.write(data, { expected: sha256Digest(data), expectedSize: data.length - 1 }),
    (e) => isStowageError(e) && e.code === 'store/size-mismatch',
  );
  await assert.rejects(
    store.write(data, { expected: sha256Digest(data), expectedSize: data.length + 5 }),
    (e) => isStowageError(e) && e.code === 'store/size-mismatch',
  );
  assert.equal(await store.has(claimed), false);
  assert.equal(await store.has(sha256Digest(data)), false);
  assert.deepEqual(await readdir(join(store.root, 'blobs', 'sha256')), []);
  assert.deepEqual(await readdir(join(store.root, 'tmp')), []);
  await assert.rejects(store.openRead(claimed), (e) => isStowageError(e) && e.code === 'store/blob-not-found');
});

test('a failing source leaves nothing behind', async (t) => {
  const store = await FsBlobStore.open(await tempDir(t));
  async function* broken() {
    yield Buffer.from('partial');
    throw new Error('connection reset');
  }
  await assert.rejects(store.write(Readable.from(broken())), /connection reset/);
  assert.deepEqual(await readdir(join(store.root, 'blobs', 'sha256')), []);
  assert.deepEqual(await readdir(join(store.root, 'tmp')), []);
});

test('two processes writing the same blob at once both succeed and leave one correct file', async (t) => {
  const cacheDir = await tempDir(t);
  const size = 4 * 1024 * 1024 + 123;
  const digest = writerDigest(size);
  const a = startWriter(cacheDir, 'write', size, digest);
  const b = startWriter(cacheDir, 'write', size, digest);
  t.after(() => {
    a.child.kill('SIGKILL');
    b.child.kill('SIGKILL');
  });
  const [ra, rb] = await Promise.all([a.exited, b.exited]);
  assert.equal(ra.code, 0, ra.err);
  assert.equal(rb.code, 0, rb.err);
  assert.equal(ra.out.trim(), `${digest} ${size}`);
  assert.equal(rb.out.trim(), `${digest} ${size}`);
  const store = new FsBlobStore(cacheDir);
  assert.equal(sha256Digest(await readFile(store.pathOf(digest))), digest);
  assert.deepEqual(await readdir(join(cacheDir, 'blobs', 'sha256')), [digest.slice(7)]);
  assert.deepEqual(await readdir(join(cacheDir, 'tmp')), []);
});

test('a writer killed mid-write never leaves a blob that reads as complete; its temp file is cleaned when stale', async (t) => {
  const cacheDir = await tempDir(t);
  const size = 2 * 1024 * 1024;
  const digest = writerDigest(size);
  const w = startWriter(cacheDir, 'hang', size, digest);
  t.after(() => w.child.kill('SIGKILL'));
  await w.sawOutput('half');
  // The writer has streamed half the blob into its temp file; wait until it is on disk.
  let temps: string[] = [];
  for (let i = 0; i < 200; i++) {
    temps = await readdir(join(cacheDir, 'tmp'));
    if (temps.length === 1 && (await stat(join(cacheDir, 'tmp', temps[0]!))).size >= size / 2) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  w.child.kill('SIGKILL');
  assert.equal((await w.exited).signal, 'SIGKILL');
  assert.equal(temps.length, 1, 'the killed writer left its temp file');

  const store = await FsBlobStore.open(cacheDir);
  assert.equal(await store.has(digest), false);
  assert.equal(await store.stat(digest), undefined);
  await assert.rejects(store.openRead(digest), (e) => isStowageError(e) && e.code === 'store/blob-not-found');
  assert.deepEqual(await readdir(join(cacheDir, 'tmp')), temps, 'a young temp file may belong to a live writer: kept');

  // A day later it is stale and goes; a fresh write of the same blob then succeeds.
  const old = new Date(Date.now() - 25 * 60 * 60 * 1000);
  await utimes(join(cacheDir, 'tmp', temps[0]!), old, old);
  assert.equal(await store.cleanTemp(), 1);
  assert.deepEqual(await readdir(join(cacheDir, 'tmp')), []);
  const bytes = Buffer.concat(Array.from({ length: size / CHUNK }, (_, i) => Buffer.alloc(CHUNK, i % 251)));
  assert.deepEqual(await store.write(bytes, { expected: digest }), { digest, size });
  assert.equal(await store.has(digest), true);
});

test('a stray file in tmp/ is never visible as a blob', async (t) => {
  const store = await FsBlobStore.open(await tempDir(t));
  const data = Buffer.from('complete-looking content');
  const digest = sha256Digest(data);
  await writeFile(join(store.root, 'tmp', digest.slice(7)), data);
  assert.equal(await store.has(digest), false);
});

test('adopt moves a caller-hashed temp file into place', async (t) => {
  const store = await FsBlobStore.open(await tempDir(t));
  const tmp = store.tempPath('layer/../x');
  assert.equal(join(store.root, 'tmp'), join(tmp, '..'), 'temp paths stay in tmp/ whatever the hint');
  await writeFile(tmp, 'layer bytes');
  const info = { digest: sha256Digest('layer bytes'), size: 11 };
  await store.adopt(tmp, info);
  assert.equal(await readFile(store.pathOf(info.digest), 'utf8'), 'layer bytes');
});

test('cache dir: --cache-dir > STOWAGE_CACHE_DIR > XDG_CACHE_HOME/stowage > ~/.cache/stowage', () => {
  const env = { STOWAGE_CACHE_DIR: '/env/cache', XDG_CACHE_HOME: '/xdg', HOME: '/home/u' };
  assert.equal(resolveCacheDir({ flag: 'rel', env, cwd: '/work' }), '/work/rel');
  assert.equal(resolveCacheDir({ env }), '/env/cache');
  assert.equal(resolveCacheDir({ env: { ...env, STOWAGE_CACHE_DIR: '' } }), '/xdg/stowage');
  assert.equal(resolveCacheDir({ env: { XDG_CACHE_HOME: 'relative', HOME: '/home/u' } }), '/home/u/.cache/stowage');
  assert.equal(resolveCacheDir({ env: {}, home: '/root' }), '/root/.cache/stowage');
});

test('an aborted write stores nothing and rejects with an abort error', async (t) => {
  const store = await FsBlobStore.open(await tempDir(t));
  const ac = new AbortController();
  async function* slow() {
    yield Buffer.alloc(1024, 1);
    ac.abort();
    await new Promise((r) => setTimeout(r, 20));
    yield Buffer.alloc(1024, 2);
  }
  await assert.rejects(store.write(Readable.from(slow()), { signal: ac.signal }), (e) => e instanceof Error && e.name === 'AbortError');
  assert.deepEqual(await readdir(join(store.root, 'blobs', 'sha256')), []);
  assert.deepEqual(await readdir(join(store.root, 'tmp')), []);
});
