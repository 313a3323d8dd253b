/**
 * The launcher (bin/stowage) starts Node without NODE_EXTRA_CA_CERTS, so Node does not load it at
 * start, and stowage applies it at the first TLS connection instead (src/registry/tls-trust.ts).
 * Run for real: a TLS docker-registry and an https file server with certificates of a throwaway CA.
 *
 * The registry listens on 127.0.0.2: stowage speaks plain HTTP to `localhost`, `127.0.0.1` and
 * `[::1]` without asking (docker's default), and 127.0.0.2 is loopback too but not one of those, so
 * it is spoken to over https like any other registry.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tls from 'node:tls';
import { Agent, request } from 'undici';
import { freePort } from '../helpers/registry.js';
import { makeTestCertificates, type TestCertificates } from '../helpers/tls-certs.js';
import { RegistryClient } from '../../src/registry/client.js';
import { pushImage } from '../../src/registry/push.js';
import { makeImage, randomLayer } from '../registry/fixtures.js';

const LAUNCHER = resolve('bin/stowage');
const HOST_IP = '127.0.0.2';
const USER = 'stowage';
const PASSWORD = 'secret-pass-123';

let dir: string;
let certs: TestCertificates;
/** The CA in a directory whose name has a space: the launcher's env -S must keep it whole. */
let caPath: string;
let registry: { host: string; proc: ChildProcess; exited: Promise<void> };
let files: { server: Server; url: string };
let imageDigest: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-launcher-tls-'));
  certs = makeTestCertificates(dir, { ips: [HOST_IP] });
  mkdirSync(join(dir, 'ca dir'));
  caPath = join(dir, 'ca dir', 'ca.pem');
  writeFileSync(caPath, readFileSync(certs.caPath));
  registry = await startTlsRegistry();
  files = await startFileServer();

  // Seed an image through the client's own TLS option (a trust of just the throwaway CA).
  const context = tls.createSecureContext({ ca: readFileSync(certs.caPath) });
  const client = new RegistryClient({ credentials: async () => ({ username: USER, password: PASSWORD }), tls: { secureContext: () => context } });
  try {
    const image = makeImage([await randomLayer(4096)]);
    await pushImage(image, { registry: registry.host, repository: 'tls/app', tags: ['v1'] }, { client });
    imageDigest = image.digest;
  } finally {
    await client.close();
  }

  // A credential helper named by DOCKER_CONFIG: it records what environment stowage gave it.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  writeFileSync(
    join(bin, 'docker-credential-x'),
    `#!/bin/sh\nprintf '%s\\n%s\\n' "$NODE_EXTRA_CA_CERTS" "\${STOWAGE_DEFERRED_CA_CERTS-unset}" > "${join(dir, 'helper-env')}"\n` +
      `printf '{"ServerURL":"%s","Username":"${USER}","Secret":"${PASSWORD}"}' "$(cat)"\n`,
  );
  chmodSync(join(bin, 'docker-credential-x'), 0o755);
  mkdirSync(join(dir, 'docker'));
  writeFileSync(join(dir, 'docker', 'config.json'), JSON.stringify({ credHelpers: { [registry.host]: 'x' } }));
});

after(async () => {
  if (registry && registry.proc.exitCode === null) {
    registry.proc.kill('SIGTERM');
    await registry.exited;
  }
  if (files) await new Promise<void>((r) => (files.server.closeAllConnections(), files.server.close(() => r())));
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function startTlsRegistry(): Promise<{ host: string; proc: ChildProcess; exited: Promise<void> }> {
  const htpasswd = join(dir, 'htpasswd');
  execFileSync('htpasswd', ['-B', '-C', '4', '-i', '-c', htpasswd, USER], { input: PASSWORD, stdio: ['pipe', 'ignore', 'ignore'] });
  const ca = new Agent({ connect: { ca: readFileSync(certs.caPath) } });
  try {
    // Another test may take the free port first: a few tries.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const config = join(dir, 'registry.yml');
      writeFileSync(
        config,
        `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n` +
          `storage:\n  filesystem:\n    rootdirectory: ${join(dir, 'storage')}\n` +
          `auth:\n  htpasswd:\n    realm: stowage-test\n    path: ${htpasswd}\n` +
          `http:\n  addr: ${HOST_IP}:${port}\n  secret: stowage-test-secret\n  tls:\n    certificate: ${certs.certPath}\n    key: ${certs.keyPath}\n`,
      );
      const logPath = join(dir, `registry-${attempt}.log`);
      const fd = openSync(logPath, 'w');
      let proc: ChildProcess;
      try {
        proc = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', fd, fd] });
      } finally {
        closeSync(fd);
      }
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      for (let i = 0; proc.exitCode === null && proc.signalCode === null; i++) {
        try {
          const res = await request(`https://${HOST_IP}:${port}/v2/`, { dispatcher: ca });
          await res.body.dump();
          if (res.statusCode === 401) return { host: `${HOST_IP}:${port}`, proc, exited };
        } catch {
          // not listening yet
        }
        if (i > 400) {
          proc.kill('SIGKILL');
          throw new Error(`docker-registry did not become ready: ${readFileSync(logPath, 'utf8').slice(-2000)}`);
        }
        await sleep(25);
      }
      const log = readFileSync(logPath, 'utf8');
      if (attempt >= 3 || !/address already in use/.test(log)) throw new Error(`docker-registry exited: ${log.slice(-2000)}`);
    }
  } finally {
    await ca.close();
  }
}

async function startFileServer(): Promise<{ server: Server; url: string }> {
  const server = createHttpsServer({ cert: readFileSync(certs.certPath), key: readFileSync(certs.keyPath) }, (req, res) => {
    if (req.url === '/hello.txt') res.writeHead(200, { 'content-type': 'text/plain' }).end('hello over https\n');
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, HOST_IP, r));
  return { server, url: `https://${HOST_IP}:${(server.address() as AddressInfo).port}` };
}

/** How a server whose certificate nobody trusts is reported (OpenSSL's reason, as Node names it). */
const UNTRUSTED = /UNABLE_TO_VERIFY_LEAF_SIGNATURE|certificate/;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the launcher itself (its shebang), or `node <launcher>` with `viaNode`, in a clean environment. */
async function stowage(args: string[], options: { extraCaCerts?: string; viaNode?: boolean }): Promise<Run> {
  const env: NodeJS.ProcessEnv = {
    PATH: `${join(dir, 'bin')}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    HOME: dir,
    DOCKER_CONFIG: join(dir, 'docker'),
    STOWAGE_CACHE_DIR: join(dir, 'cache'),
    ...(options.extraCaCerts !== undefined ? { NODE_EXTRA_CA_CERTS: options.extraCaCerts } : {}),
  };
  const [file, argv] = options.viaNode ? [process.execPath, [LAUNCHER, ...args]] : [LAUNCHER, args];
  const child = spawn(file, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  return { code, stdout, stderr };
}

test('copy from an https registry with NODE_EXTRA_CA_CERTS naming its CA: trusted, and the credential helper sees the variable', async () => {
  const out = join(dir, 'layout-ok');
  const r = await stowage(['copy', '-q', `${registry.host}/tls/app:v1`, `oci:${out}:v1`], { extraCaCerts: caPath });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), imageDigest);
  assert.equal(r.stderr, '');
  // The helper ran as a child of stowage: NODE_EXTRA_CA_CERTS as the user set it (path with a space
  // intact), the launcher's hand-over variable gone.
  assert.equal(readFileSync(join(dir, 'helper-env'), 'utf8'), `${caPath}\nunset\n`);
});

test('the same copy without NODE_EXTRA_CA_CERTS fails on the certificate', async () => {
  const r = await stowage(['copy', '-q', `${registry.host}/tls/app:v1`, `oci:${join(dir, 'layout-untrusted')}:v1`], {});
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, UNTRUSTED);
  assert.match(r.stderr, /certificate of .* is not trusted/, 'said as what it is');
  assert.match(r.stderr, /hint: .*NODE_EXTRA_CA_CERTS/, 'with the way to trust a private CA');
  assert.doesNotMatch(r.stderr, /--insecure-registry|after \d+ attempt/, 'not a network problem, not plain HTTP');
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('an unreadable NODE_EXTRA_CA_CERTS: Node\'s warning once, then only the bundled roots (the copy fails on the certificate)', async () => {
  const missing = join(dir, 'missing.pem');
  const r = await stowage(['copy', '-q', `${registry.host}/tls/app:v1`, `oci:${join(dir, 'layout-missing')}:v1`], { extraCaCerts: missing });
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr.split(`Warning: Ignoring extra certs from \`${missing}\`, load failed:`).length - 1, 1, r.stderr);
  assert.match(r.stderr, UNTRUSTED);
});

test('a run that opens no TLS connection never reads NODE_EXTRA_CA_CERTS: no warning even for an unreadable file', async () => {
  // Node itself would have read it at start (and warned): the launcher deferred it.
  const r = await stowage(['--version'], { extraCaCerts: join(dir, 'missing.pem') });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
});

test('`node bin/stowage` (no shebang, Node loads NODE_EXTRA_CA_CERTS itself) still trusts the CA', async () => {
  const r = await stowage(['copy', '-q', `${registry.host}/tls/app:v1`, `oci:${join(dir, 'layout-node')}:v1`], { extraCaCerts: caPath, viaNode: true });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), imageDigest);
});

test('ADD https://… in a build trusts NODE_EXTRA_CA_CERTS; without it the download fails on the certificate', async () => {
  const ctx = join(dir, 'context');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, 'Dockerfile'), `FROM scratch\nADD ${files.url}/hello.txt /hello.txt\n`);
  const args = (name: string) => ['executor', '--context', ctx, '--destination', `oci:${join(dir, name)}:v1`, '--verbosity=warn'];
  const ok = await stowage(args('add-ok'), { extraCaCerts: caPath });
  assert.equal(ok.code, 0, ok.stderr);
  const failed = await stowage(args('add-untrusted'), {});
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /cannot download .*hello\.txt.*certificate/i);
});
