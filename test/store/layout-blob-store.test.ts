import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Digest } from '../../src/image/digest.js';
import { openLayoutBlobStore } from '../../src/store/oci-layout.js';
import { syncFileSystem } from '../../src/store/atomic.js';
import { isBatchSynced } from '../../src/store/types.js';
import { isStowageError } from '../../src/util/errors.js';
import { tempDir } from './helpers.js';

test('a layout blob store writes verified blobs into blobs/sha256 and its temp files beside index.json', async (t) => {
  const layout = join(await tempDir(t), 'layout');
  const store = await openLayoutBlobStore(layout);
  assert.ok(isBatchSynced(store));
  assert.deepEqual(JSON.parse(await readFile(join(layout, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  const data = Buffer.from('layer bytes');
  const info = await store.write(data, { expected: sha256Digest(data), expectedSize: data.length });
  assert.equal(store.pathOf(info.digest), join(layout, 'blobs', 'sha256', info.digest.slice(7)));
  assert.deepEqual(await readFile(store.pathOf(info.digest)), data);
  assert.match(store.tempPath('abc'), new RegExp(`^${layout}/\\.stowage-tmp-abc-`));
  await assert.rejects(store.write(Buffer.from('other'), { expected: sha256Digest('claimed') }), (e) => isStowageError(e) && e.code === 'store/digest-mismatch');
  assert.deepEqual((await readdir(layout)).sort(), ['blobs', 'oci-layout']);
  await store.syncAll();
});

test('stale-temp cleanup in a layout removes only old .stowage-tmp- files, never the layout itself', async (t) => {
  const layout = join(await tempDir(t), 'layout');
  const store = await openLayoutBlobStore(layout);
  await writeFile(join(layout, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
  const old = join(layout, '.stowage-tmp-dead-1-00');
  const young = join(layout, '.stowage-tmp-live-1-00');
  await writeFile(old, 'x');
  await writeFile(young, 'y');
  const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
  for (const p of [old, join(layout, 'index.json'), join(layout, 'oci-layout'), join(layout, 'blobs')]) await utimes(p, twoDaysAgo, twoDaysAgo);
  assert.equal(await store.cleanTemp(), 1);
  assert.deepEqual((await readdir(layout)).sort(), ['.stowage-tmp-live-1-00', 'blobs', 'index.json', 'oci-layout']);
});

test('a layout blob store refuses a directory that is not a layout', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'README'), 'not a layout');
  await assert.rejects(openLayoutBlobStore(dir), (e) => isStowageError(e) && e.code === 'store/not-a-layout');
});

test('syncFileSystem syncs a directory tree (and falls back to per-file fsync without coreutils sync)', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'a', 'b'), { recursive: true });
  await writeFile(join(dir, 'a', 'b', 'f'), 'data');
  await syncFileSystem(dir);
  // With no `sync` on PATH the per-file fallback runs; it must reach nested files without failing.
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    await syncFileSystem(dir);
  } finally {
    process.env.PATH = path;
  }
  await assert.rejects(syncFileSystem(join(dir, 'missing')), { code: 'ENOENT' });
});
