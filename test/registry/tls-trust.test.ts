/**
 * deferredTlsTrust: the launcher's STOWAGE_DEFERRED_CA_CERTS given NODE_EXTRA_CA_CERTS's meaning —
 * the environment restored for child processes, one secure context built on first use and shared,
 * an unreadable file a single warning and Node's defaults.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { deferredTlsTrust, withoutCertificatesOf } from '../../src/registry/tls-trust.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { makeTestCertificates, type TestCertificates } from '../helpers/tls-certs.js';

let dir: string;
let certs: TestCertificates;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-tls-trust-'));
  certs = makeTestCertificates(dir, { ips: ['127.0.0.1'] });
});
after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Connects to a TLS server that presents the throwaway CA's certificate; resolves to the outcome. */
async function handshake(secureContext: tls.SecureContext | undefined): Promise<'ok' | string> {
  const server = tls.createServer({ cert: await readFile(certs.certPath), key: await readFile(certs.keyPath) }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await new Promise((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, ...(secureContext ? { secureContext } : {}) }, () => {
        socket.destroy();
        resolve('ok');
      });
      socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
}

test('nothing deferred (no STOWAGE_DEFERRED_CA_CERTS): Node defaults, environment untouched', () => {
  const env: NodeJS.ProcessEnv = { PATH: '/bin' };
  const trust = deferredTlsTrust(env, { warn: () => assert.fail('no warning expected') });
  assert.equal(trust.secureContext(), undefined);
  assert.deepEqual(env, { PATH: '/bin' });
});

test('an empty STOWAGE_DEFERRED_CA_CERTS (NODE_EXTRA_CA_CERTS was unset): Node defaults, nothing restored', () => {
  const env: NodeJS.ProcessEnv = { STOWAGE_DEFERRED_CA_CERTS: '' };
  const trust = deferredTlsTrust(env, { warn: () => assert.fail('no warning expected') });
  assert.equal(trust.secureContext(), undefined);
  assert.deepEqual(env, {});
});

test('a deferred file: NODE_EXTRA_CA_CERTS restored, one context built on first use and reused, trusting the file', async () => {
  const env: NodeJS.ProcessEnv = { STOWAGE_DEFERRED_CA_CERTS: certs.caPath };
  const trust = deferredTlsTrust(env, { warn: (m) => assert.fail(`unexpected warning ${m}`) });
  assert.deepEqual(env, { NODE_EXTRA_CA_CERTS: certs.caPath });
  const first = trust.secureContext();
  assert.ok(first, 'a secure context');
  assert.equal(trust.secureContext(), first, 'the same object on every call');
  // This test runs without NODE_EXTRA_CA_CERTS pointing at the throwaway CA: Node alone rejects the
  // server, the deferred trust accepts it.
  assert.notEqual(await handshake(undefined), 'ok');
  assert.equal(await handshake(first), 'ok');
});

test('a file that repeats the bundled roots (a system bundle) and adds a CA: the CA is trusted, the repeats are dropped before parsing', async () => {
  const ca = await readFile(certs.caPath, 'utf8');
  const bundle = join(dir, 'bundle.pem');
  // CRLF line ends, as some bundles have: still recognised as the same certificates.
  writeFileSync(bundle, [...tls.rootCertificates.slice(0, 20).map((c) => c.replace(/\n/g, '\r\n')), ca].join('\n'));
  assert.equal(withoutCertificatesOf(readFileSync(bundle, 'utf8'), tls.rootCertificates).trim(), ca.trim());
  const trust = deferredTlsTrust({ STOWAGE_DEFERRED_CA_CERTS: bundle }, { warn: (m) => assert.fail(`unexpected warning ${m}`) });
  assert.equal(await handshake(trust.secureContext()), 'ok');
});

test('an unreadable file: one warning in Node\'s words, then Node\'s defaults', () => {
  const missing = join(dir, 'no such dir', 'ca.pem');
  const env: NodeJS.ProcessEnv = { STOWAGE_DEFERRED_CA_CERTS: missing };
  const warnings: string[] = [];
  const trust = deferredTlsTrust(env, { warn: (m) => warnings.push(m) });
  assert.equal(env.NODE_EXTRA_CA_CERTS, missing, 'restored all the same: a child sees what the user set');
  assert.equal(trust.secureContext(), undefined);
  assert.equal(trust.secureContext(), undefined);
  assert.deepEqual(warnings, [`Warning: Ignoring extra certs from \`${missing}\`, load failed: No such file or directory\n`]);
});
