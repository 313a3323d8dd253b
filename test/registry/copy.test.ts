import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { RegistryClient } from '../../src/registry/client.js';
import { staticCredentials } from '../../src/registry/auth.js';
import { pushImage } from '../../src/registry/push.js';
import { runCopy, parseCopyArgs } from '../../src/cli/copy.js';
import { StowageError } from '../../src/util/errors.js';
import { makeImage, randomLayer } from './fixtures.js';

const run = promisify(execFile);

describe('stowage copy', () => {
  let reg: TestRegistry;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    reg = await startRegistry({ auth: 'token' });
    dir = await mkdtemp(join(tmpdir(), 'stowage-copy-'));
    // Credentials reach copy only through a docker config file, as for a user.
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString('base64') } } }));
    env = { DOCKER_CONFIG: dir, STOWAGE_CACHE_DIR: join(dir, 'cache'), PATH: process.env.PATH };
  });
  after(async () => {
    await reg?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function copy(...argv: string[]): Promise<string> {
    let out = '';
    const code = await runCopy(argv, { stdout: { write: (s: string) => (out += s) }, env });
    assert.equal(code, 0);
    return out;
  }

  test('registry → registry (mounting the layers) → oci → docker-archive → registry keeps layers and config', async () => {
    const layers = [await randomLayer(4000), await randomLayer(6000)];
    const image = makeImage(layers);
    const client = new RegistryClient({ credentials: staticCredentials({ [reg.host]: { username: reg.username, password: reg.password } }) });
    try {
      await pushImage(image, { registry: reg.host, repository: 'copy/src', tags: ['v1'] }, { client });
    } finally {
      await client.close();
    }

    const r2r = await copy(`${reg.host}/copy/src:v1`, `docker://${reg.host}/copy/dst:v1`);
    assert.match(r2r, new RegExp(`digest: ${image.digest}`));
    // Same registry: both layers are mounted from copy/src; only the config is uploaded.
    assert.match(r2r, /blobs: 1 uploaded, 2 mounted, 0 already present/);

    const layout = join(dir, 'layout');
    assert.equal((await copy('-q', `${reg.host}/copy/dst:v1`, `oci:${layout}:t`)).trim(), image.digest);
    const archive = join(dir, 'image.tar');
    await copy(`oci:${layout}:t`, `docker-archive:${archive}:copy/arch:v2`);
    await copy('--cache-dir', join(dir, 'cache2'), `docker-archive:${archive}`, `${reg.host}/copy/final:v3`);

    const info = JSON.parse(
      (await run('skopeo', ['inspect', '--tls-verify=false', '--creds', `${reg.username}:${reg.password}`, `docker://${reg.host}/copy/final:v3`])).stdout,
    ) as { Layers: string[]; Architecture: string };
    assert.deepEqual(info.Layers, layers.map((l) => l.descriptor.digest));
    const cfg = JSON.parse(
      (await run('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', '--creds', `${reg.username}:${reg.password}`, `docker://${reg.host}/copy/final:v3`])).stdout,
    ) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(cfg.rootfs.diff_ids, layers.map((l) => l.diffId));
    assert.ok((await readFile(archive)).length > 10_000);
  });

  test('docker.io references are pulled through --registry-mirror', async () => {
    const image = makeImage([await randomLayer(1500)]);
    const client = new RegistryClient({ credentials: staticCredentials({ [reg.host]: { username: reg.username, password: reg.password } }) });
    try {
      // A mirror serves Docker Hub's paths: library/<name>.
      await pushImage(image, { registry: reg.host, repository: 'library/stowage-mirror-test', tags: ['1.0'] }, { client });
    } finally {
      await client.close();
    }
    const out = await copy('--registry-mirror', `http://${reg.host}`, '-q', 'stowage-mirror-test:1.0', `oci:${join(dir, 'mirrored')}:m`);
    assert.equal(out.trim(), image.digest);
  });

  test('usage errors are one line with a hint', async () => {
    assert.throws(() => parseCopyArgs(['a']), (e: unknown) => e instanceof StowageError && e.code === 'usage/copy' && /exactly two arguments/.test(e.message));
    assert.throws(() => parseCopyArgs(['--insecure-registr', 'x', 'a', 'b']), (e: unknown) => e instanceof StowageError && /did you mean --insecure-registry/.test(e.hint ?? ''));
    await assert.rejects(runCopy(['UPPER/Case', 'oci:/tmp/x'], { stdout: { write: () => true }, env }), (e: unknown) => e instanceof StowageError && e.code === 'registry/invalid-reference');
    const o = parseCopyArgs(['--insecure-registry=reg:5000', '--insecure-registry', 'other:1', 'docker://a/b', 'oci:x']);
    assert.deepEqual(o.insecureRegistries, ['reg:5000', 'other:1']);
    assert.deepEqual(o.src, { kind: 'registry', text: 'a/b' });
  });
});
