/**
 * Independent readers must accept what the layer writer produces: umoci (Go's gzip and tar, which
 * also verifies each layer's diff_id) unpacks a multi-member gzip layer from an OCI layout.
 */
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { writeLayer } from '../../src/engine/layer/writer.js';
import { sha256Digest, digestHex } from '../../src/image/digest.js';
import { DirBlobStore, tempDir } from './layer-helpers.js';

const haveUmoci = spawnSync('umoci', ['--version']).status === 0;

describe('layer blobs in an OCI layout', () => {
  it('umoci unpacks a multi-member gzip layer and verifies its diff_id', async () => {
    // An independent reader is the point of this test: a missing umoci fails it rather than skip it.
    assert.ok(haveUmoci, 'umoci is missing: install the Debian package umoci (scripts/install-deps.sh does)');
    const t = tempDir('oci');
    try {
      const src = join(t.path, 'big');
      const big = randomBytes(2_500_000); // > 2 gzip members of 1 MiB
      writeFileSync(src, big);
      const store = new DirBlobStore(join(t.path, 'blobs-tmp'));
      mkdirSync(store.dir);
      const layer = await writeLayer(
        {
          entries: [
            { path: 'data', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 1_600_000_000_500_000_000n, size: 0 },
            { path: 'data/big', type: 'file', mode: 0o640, uid: 0, gid: 0, mtimeNs: 1_600_000_000_250_000_000n, size: big.length, source: src },
          ],
          deletions: [],
          opaqueDirs: [],
        },
        store,
      );
      const layout = join(t.path, 'layout');
      const blobs = join(layout, 'blobs', 'sha256');
      mkdirSync(blobs, { recursive: true });
      copyFileSync(store.pathOf(layer.descriptor.digest), join(blobs, digestHex(layer.descriptor.digest)));
      const put = (bytes: Buffer): { digest: string; size: number } => {
        const d = sha256Digest(bytes);
        writeFileSync(join(blobs, digestHex(d)), bytes);
        return { digest: d, size: bytes.length };
      };
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer.diffId] } }));
      const c = put(config);
      const manifest = Buffer.from(
        JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...c }, layers: [layer.descriptor] }),
      );
      const m = put(manifest);
      writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
      writeFileSync(
        join(layout, 'index.json'),
        JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': 'test' } }] }),
      );
      const bundle = join(t.path, 'bundle');
      const args = ['unpack', '--image', `${layout}:test`, bundle];
      if (process.getuid?.() !== 0) args.splice(1, 0, '--rootless');
      execFileSync('umoci', args, { stdio: ['ignore', 'ignore', 'pipe'] });
      assert.ok(readFileSync(join(bundle, 'rootfs/data/big')).equals(big));
    } finally {
      t.cleanup();
    }
  });
});
