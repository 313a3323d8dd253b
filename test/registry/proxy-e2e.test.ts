/**
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY end to end: `stowage copy` pulls and pushes through an HTTP
 * proxy to a real docker-registry, ADD <url> downloads through it, credentials in the proxy URL are
 * sent (and never shown), and what Go's rules exempt goes direct. The registry is reached as
 * `registry.stowage.test:<port>`, a name only the proxy resolves (to 127.0.0.1): a request that
 * reached it did so through the proxy.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startConnectProxy, type ConnectProxy } from '../helpers/connect-proxy.js';
import { pushBusybox } from '../helpers/busybox-image.js';
import { runCopy } from '../../src/cli/copy.js';
import { addIntoRootfs } from '../../src/engine/copy/add.js';
import { proxyConfigFromEnv } from '../../src/registry/proxy.js';
import { StowageError } from '../../src/util/errors.js';

let reg: TestRegistry;
let proxy: ConnectProxy;
let authProxy: ConnectProxy;
let dir: string;
let named: string;
const PROXY_PASSWORD = 'pr0xy-s3cret';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-proxy-'));
  await writeFile(join(dir, 'config.json'), '{}'); // DOCKER_CONFIG: no host credentials
  reg = await startRegistry();
  await pushBusybox(`${reg.host}/base/busybox:1`, join(dir, 'seed-cache'));
  const hosts = { 'registry.stowage.test': '127.0.0.1', 'files.stowage.test': '127.0.0.1' };
  proxy = await startConnectProxy({ hosts });
  authProxy = await startConnectProxy({ hosts, credentials: { user: 'ci', password: PROXY_PASSWORD } });
  named = `registry.stowage.test:${reg.host.split(':')[1]}`;
});
after(async () => {
  await proxy?.stop();
  await authProxy?.stop();
  await reg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function copy(args: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runCopy([...args, '--insecure-registry', named], { stdout: { write: (s: string) => (out += s) }, env: { DOCKER_CONFIG: dir, STOWAGE_CACHE_DIR: join(dir, 'cache'), ...env } });
  return { code, out };
}

const targets = (p: ConnectProxy) => p.connects.map((c) => c.target);

test('copy pulls and pushes through HTTP_PROXY: every connection to the registry is a tunnel through the proxy', async () => {
  const before = proxy.connects.length;
  const pulled = await copy([`${named}/base/busybox:1`, `oci:${join(dir, 'pulled')}:x`], { HTTP_PROXY: proxy.url });
  assert.equal(pulled.code, 0);
  const pushed = await copy([`oci:${join(dir, 'pulled')}:x`, `${named}/copied/busybox:2`], { HTTP_PROXY: proxy.url });
  assert.equal(pushed.code, 0);
  const tunnels = targets(proxy).slice(before);
  assert.ok(tunnels.length >= 2 && tunnels.every((t) => t === named), `tunnels: ${tunnels.join(', ')}`);
  // Checked directly against the registry (not through stowage): the pushed image is there.
  const inspected = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/copied/busybox:2`], { encoding: 'utf8' })) as { Layers: string[] };
  assert.equal(inspected.Layers.length, 2);
});

test('credentials in the proxy URL are sent as Proxy-Authorization; a refusal names the proxy, never the password', async () => {
  const ok = await copy([`${named}/base/busybox:1`, `oci:${join(dir, 'auth')}:x`], { http_proxy: authProxy.url.replace('//', `//ci:${encodeURIComponent(PROXY_PASSWORD)}@`) });
  assert.equal(ok.code, 0);
  assert.ok(authProxy.connects.some((c) => c.allowed && c.target === named));
  const wrong = authProxy.url.replace('//', '//ci:wrong-one@');
  await assert.rejects(copy([`${named}/base/busybox:1`, `oci:${join(dir, 'auth-wrong')}:x`], { HTTP_PROXY: wrong }), (e: unknown) => {
    assert.ok(e instanceof StowageError, String(e));
    assert.equal(e.code, 'registry/proxy');
    assert.match(e.message, new RegExp(`the proxy ${authProxy.url} refused the connection to ${named} \\(HTTP 407\\)`));
    assert.match(e.hint ?? '', /user:password@host:port/);
    assert.doesNotMatch(`${e.message} ${e.hint}`, /wrong-one|pr0xy/);
    return true;
  });
});

test('NO_PROXY and loopback registries go direct; an unreachable proxy is named in the error', async () => {
  const before = proxy.connects.length;
  // registry.stowage.test resolves only at the proxy: bypassing it means not finding the host.
  await assert.rejects(copy([`${named}/base/busybox:1`, `oci:${join(dir, 'np')}:x`], { HTTP_PROXY: proxy.url, NO_PROXY: 'example.com,.stowage.test' }), (e: unknown) => {
    assert.ok(e instanceof StowageError, String(e));
    assert.doesNotMatch(e.code, /proxy/);
    return true;
  });
  // 127.0.0.1 is never proxied (Go's rule): a dead proxy does not matter.
  const direct = await copy([`${reg.host}/base/busybox:1`, `oci:${join(dir, 'loop')}:x`], { HTTP_PROXY: 'http://127.0.0.1:9' });
  assert.equal(direct.code, 0);
  assert.equal(proxy.connects.length, before, 'nothing went through the proxy');
  await assert.rejects(copy([`${named}/base/busybox:1`, `oci:${join(dir, 'dead')}:x`], { HTTP_PROXY: 'http://u:pw-hidden@127.0.0.1:9' }), (e: unknown) => {
    assert.ok(e instanceof StowageError, String(e));
    assert.equal(e.code, 'registry/proxy');
    assert.match(e.message, /cannot reach the proxy http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/);
    assert.doesNotMatch(e.message, /pw-hidden/);
    return true;
  });
});

test('ADD <url> downloads through the proxy', async (t) => {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('via proxy\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))));
  const port = (server.address() as AddressInfo).port;
  const rootfs = await mkdtemp(join(dir, 'rootfs-'));
  const ctx = await mkdtemp(join(dir, 'ctx-'));
  const before = proxy.connects.length;
  await addIntoRootfs({
    rootfs, sourceRoot: ctx, workdir: '/', parents: false, excludes: [], link: false, fromContext: true,
    sources: [`http://files.stowage.test:${port}/file.txt`], dest: '/file.txt', tmpDir: dir,
    proxy: proxyConfigFromEnv({ HTTP_PROXY: proxy.url })!,
    signal: AbortSignal.timeout(30_000),
  });
  assert.equal(readFileSync(join(rootfs, 'file.txt'), 'utf8'), 'via proxy\n');
  assert.deepEqual(targets(proxy).slice(before), [`files.stowage.test:${port}`]);
});

test('the installed CLI (bin/stowage, bundled) copies through the proxy and exits', async () => {
  const before = proxy.connects.length;
  const out = join(dir, 'cli');
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    // Asynchronously: the proxy lives in this process.
    execFile(resolve('bin/stowage'), ['copy', `${named}/base/busybox:1`, `oci:${out}:x`, '--insecure-registry', named], {
      env: { ...process.env, DOCKER_CONFIG: dir, STOWAGE_CACHE_DIR: join(dir, 'cli-cache'), HTTP_PROXY: proxy.url },
      timeout: 60_000,
    }, (err, stdout, stderr) => done({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr }));
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^copied /);
  assert.ok(targets(proxy).slice(before).includes(named));
});

