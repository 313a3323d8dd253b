/**
 * Two `stowage copy REGISTRY oci:DIR` into the same new layout at once: a copy that fails must not
 * take the other one's finished image with it. The failing copy sees no directory when it starts,
 * so it believes it created the layout; on failure it may remove it only while the layout is still
 * nobody's output (no index.json, no other writer's temp file), decided under the index lock.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { RegistryClient } from '../../src/registry/client.js';
import { pushImage } from '../../src/registry/push.js';
import { runCopy } from '../../src/cli/copy.js';
import { readImageFromLayout } from '../../src/store/oci-layout.js';
import { hostPlatform } from '../../src/image/platform.js';
import { makeImage, randomLayer } from '../registry/fixtures.js';

let reg: TestRegistry;
let dir: string;
before(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), 'stowage-copy-concurrent-'));
  await writeFile(join(dir, 'config.json'), '{}');
});
after(async () => {
  await reg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A registry that holds every manifest request until `release()`, then answers 404. */
async function stallingRegistry(): Promise<{ host: string; manifestAsked: Promise<void>; release(): void; stop(): Promise<void> }> {
  let asked!: () => void;
  const manifestAsked = new Promise<void>((r) => (asked = r));
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const server: Server = createServer((req, res) => {
    if (req.url === '/v2/' || req.url === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' }).end('{}');
      return;
    }
    asked();
    void released.then(() => res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] })));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    manifestAsked,
    release,
    stop: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

test('a copy that fails into a new layout leaves the image another copy finished there meanwhile', async () => {
  const image = makeImage([await randomLayer(10_000)]);
  const client = new RegistryClient({ credentials: async () => undefined });
  try {
    await pushImage(image, { registry: reg.host, repository: 'concurrent/ok', tags: ['t'] }, { client });
  } finally {
    await client.close();
  }
  const stalling = await stallingRegistry();
  const env = { DOCKER_CONFIG: dir, STOWAGE_CACHE_DIR: join(dir, 'cache'), PATH: process.env.PATH };
  const io = { stdout: { write: () => true }, env };
  const layout = join(dir, 'shared-layout');
  try {
    // The failing copy starts first: no layout yet, so it counts the layout as its own.
    const failing = runCopy([`${stalling.host}/concurrent/missing:t`, `oci:${layout}:missing`], io).then(
      (code) => ({ code }),
      (e: unknown) => ({ error: e }),
    );
    await stalling.manifestAsked;
    // Meanwhile another copy completes into the same layout.
    assert.equal(await runCopy([`${reg.host}/concurrent/ok:t`, `oci:${layout}:ok`], io), 0);
    stalling.release();
    const outcome = await failing;
    assert.ok('error' in outcome, 'the stalled copy fails');
    const kept = await readImageFromLayout(layout, { tag: 'ok', platform: hostPlatform() });
    assert.equal(kept.digest, image.digest, 'the finished copy is still in the layout');
  } finally {
    await stalling.stop();
  }
});
