import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeLayer } from '../../src/engine/layer/writer.js';
import type { Layer } from '../../src/image/blob.js';
import type { Digest } from '../../src/image/digest.js';
import { UnpackedLayerStore } from '../../src/engine/unpacked-layers.js';
import { DirBlobStore, tempDir } from './layer-helpers.js';

describe('UnpackedLayerStore', () => {
  it('unpacks once per diffId, atomically, even with two stores (processes) racing', async () => {
    const t = tempDir('ustore');
    try {
      mkdirSync(join(t.path, 'blobs'));
      const blobs = new DirBlobStore(join(t.path, 'blobs'));
      writeFileSync(join(t.path, 'f'), 'content');
      const r = await writeLayer(
        { entries: [{ path: 'etc/f', type: 'file', mode: 0o600, uid: 0, gid: 0, mtimeNs: 1_000_000_000_000_000_000n, size: 7, source: join(t.path, 'f') }], deletions: ['etc/gone'], opaqueDirs: [] },
        blobs,
      );
      let opens = 0;
      const layer: Layer = { descriptor: r.descriptor, diffId: r.diffId, open: async () => (opens++, blobs.openRead(r.descriptor.digest)) };
      const cache = join(t.path, 'cache');
      const a = new UnpackedLayerStore(cache);
      const b = new UnpackedLayerStore(cache);
      const dirs = await Promise.all([a.ensureUnpacked(layer), a.ensureUnpacked(layer), b.ensureUnpacked(layer)]);
      assert.equal(new Set(dirs).size, 1);
      assert.ok(opens <= 2, 'one flight per store');
      assert.equal(dirs[0], join(cache, 'layers', r.diffId.slice(7)));
      assert.equal(readFileSync(join(dirs[0]!, 'etc/f'), 'utf8'), 'content');
      const meta = JSON.parse(readFileSync(`${dirs[0]}.meta.json`, 'utf8')) as { whiteouts: string[] };
      assert.deepEqual(meta.whiteouts, ['etc/gone']);
      assert.deepEqual(readdirSync(join(cache, 'layers')).filter((n) => n.startsWith('.tmp')), [], 'no temp dirs left');
      const before = opens;
      await a.ensureUnpacked(layer);
      assert.equal(opens, before, 'an unpacked layer is not read again');
    } finally {
      t.cleanup();
    }
  });

  it('rejects a layer whose content does not match its diffId and keeps nothing', async () => {
    const t = tempDir('ustore');
    try {
      mkdirSync(join(t.path, 'blobs'));
      const blobs = new DirBlobStore(join(t.path, 'blobs'));
      const r = await writeLayer({ entries: [{ path: 'x', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, size: 0 }], deletions: [], opaqueDirs: [] }, blobs);
      const wrong = `sha256:${'1'.repeat(64)}` as Digest;
      const store = new UnpackedLayerStore(join(t.path, 'cache'));
      await assert.rejects(
        store.ensureUnpacked({ descriptor: r.descriptor, diffId: wrong, open: () => blobs.openRead(r.descriptor.digest) }),
        (e: Error & { code?: string }) => e.code === 'store/diffid-mismatch',
      );
      assert.ok(!existsSync(store.dirOf(wrong)));
      assert.deepEqual(readdirSync(store.layersDir), []);
    } finally {
      t.cleanup();
    }
  });
});
