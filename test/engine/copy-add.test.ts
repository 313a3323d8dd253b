import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import * as tarStream from 'tar-stream';
import { addIntoRootfs, urlFileName, type AddOptions } from '../../src/engine/copy/add.js';
import { compressionOf, detectArchive } from '../../src/engine/copy/untar.js';
import { StowageError } from '../../src/util/errors.js';
import { copyOpts, mode, sandbox, writeTree, type Sandbox } from './copy-fixtures.js';

const isCode = (code: string) => (e: unknown) => {
  assert.ok(e instanceof StowageError, `expected StowageError ${code}, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  return true;
};

const addOpts = (s: Sandbox, over: Partial<AddOptions> & Pick<AddOptions, 'sources' | 'dest'>): AddOptions => ({
  ...copyOpts(s, { sources: [], dest: over.dest }),
  ...over,
});

/** Makes <ctx>/<name> from a small tree with the system tar (flag: z, J, j or ''). */
function makeArchive(s: Sandbox, name: string, flag: string): void {
  const src = join(s.base, 'archive-src');
  writeTree(src, { 'pkg/bin/tool': '#!/bin/sh\n', 'pkg/README': 'readme', 'top.txt': 'top' });
  chownSync(join(src, 'pkg/README'), 1500, 1600);
  execFileSync('tar', [`-c${flag}f`, join(s.ctx, name), '-C', src, 'pkg', 'top.txt']);
}

describe('ADD local archives', () => {
  for (const [name, flag] of [
    ['a.tar.gz', 'z'],
    ['a.tar.xz', 'J'],
    ['a.tar.bz2', 'j'],
    ['plain.tar', ''],
    ['misleading.zip', 'z'], // detection is by content, not name
  ] as const) {
    it(`extracts ${name}, merging into the destination and keeping archive owners`, async (t) => {
      const s = sandbox(t);
      makeArchive(s, name, flag);
      writeTree(s.rootfs, { 'opt/existing': 'stays', 'opt/top.txt': 'replaced' });
      await addIntoRootfs(addOpts(s, { sources: [name], dest: '/opt' }));
      assert.deepEqual(readdirSync(join(s.rootfs, 'opt')).sort(), ['existing', 'pkg', 'top.txt']);
      assert.equal(readFileSync(join(s.rootfs, 'opt/top.txt'), 'utf8'), 'top');
      assert.equal(readFileSync(join(s.rootfs, 'opt/pkg/README'), 'utf8'), 'readme');
      assert.equal(statSync(join(s.rootfs, 'opt/pkg/README')).uid, 1500);
    });
  }

  it('--chown owns every extracted entry and the created destination', async (t) => {
    const s = sandbox(t);
    makeArchive(s, 'a.tar.gz', 'z');
    await addIntoRootfs(addOpts(s, { sources: ['a.tar.gz'], dest: '/new/dir', chown: { uid: 42, gid: 43 } }));
    for (const p of ['new/dir', 'new/dir/pkg', 'new/dir/pkg/README', 'new/dir/top.txt']) {
      const st = statSync(join(s.rootfs, p));
      assert.deepEqual([st.uid, st.gid], [42, 43], p);
    }
  });

  it('--unpack=false copies the archive as a file; empty and fake archives are plain files', async (t) => {
    const s = sandbox(t);
    makeArchive(s, 'a.tar.gz', 'z');
    writeFileSync(join(s.ctx, 'empty.tar.gz'), '');
    writeFileSync(join(s.ctx, 'fake.tar'), 'not a tar at all'.repeat(64));
    await addIntoRootfs(addOpts(s, { sources: ['a.tar.gz'], dest: '/keep/', unpack: false }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'keep')), ['a.tar.gz']);
    await addIntoRootfs(addOpts(s, { sources: ['empty.tar.gz', 'fake.tar'], dest: '/files/' }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'files')).sort(), ['empty.tar.gz', 'fake.tar']);
  });

  it('detects compression and tar by content', async (t) => {
    const s = sandbox(t);
    makeArchive(s, 'x', 'J');
    assert.equal(await detectArchive(join(s.ctx, 'x'), AbortSignal.timeout(10_000)), 'xz');
    writeFileSync(join(s.ctx, 'gz-not-tar'), execFileSync('gzip', ['-c'], { input: 'hello' }));
    assert.equal(await detectArchive(join(s.ctx, 'gz-not-tar'), AbortSignal.timeout(10_000)), undefined);
    assert.equal(compressionOf(Buffer.from('BZh91AY')), 'bzip2');
  });

  it('a hostile archive cannot write outside the rootfs', async (t) => {
    const s = sandbox(t);
    mkdirSync(join(s.base, 'host'));
    const pack = tarStream.pack();
    pack.entry({ name: '../../../../escape-dotdot', mode: 0o644 }, 'x');
    pack.entry({ name: '/abs-escape', mode: 0o644 }, 'x');
    pack.entry({ name: 'link', type: 'symlink', linkname: join(s.base, 'host') });
    pack.entry({ name: 'link/through-link', mode: 0o644 }, 'x');
    pack.entry({ name: 'hard', type: 'link', linkname: '../../../../etc/hostname' });
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    writeFileSync(join(s.ctx, 'evil.tar'), Buffer.concat(chunks));
    await addIntoRootfs(addOpts(s, { sources: ['evil.tar'], dest: '/x/' })).catch((e: unknown) => {
      // The hard link names a file that isn't in the rootfs: refusing is fine, escaping is not.
      isCode('copy/bad-archive')(e);
    });
    assert.deepEqual(readdirSync(join(s.base, 'host')), []);
    assert.ok(!existsSync(join(s.base, 'escape-dotdot')));
    assert.ok(existsSync(join(s.rootfs, 'x/escape-dotdot')));
    assert.ok(existsSync(join(s.rootfs, 'x/abs-escape')));
    assert.equal(readlinkSync(join(s.rootfs, 'x/link')), join(s.base, 'host'));
    assert.ok(existsSync(join(s.rootfs, s.base, 'host/through-link')), 'written under the rootfs');
  });
});

interface TestServer {
  url: string;
  server: Server;
}

async function serve(t: TestContext, files: Record<string, { body: Buffer; lastModified?: string }>): Promise<TestServer> {
  const server = createServer((req, res) => {
    const f = files[req.url ?? ''];
    if (!f) {
      res.writeHead(404).end('nope');
      return;
    }
    res.writeHead(200, { 'content-length': f.body.length, ...(f.lastModified ? { 'last-modified': f.lastModified } : {}) });
    res.end(f.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('ADD URLs', () => {
  const body = Buffer.from('downloaded content\n');
  const sha = createHash('sha256').update(body).digest('hex');

  it('downloads with mode 0600 and Last-Modified mtime, verifying --checksum', async (t) => {
    const s = sandbox(t);
    const srv = await serve(t, { '/files/tool.sh': { body, lastModified: 'Wed, 21 Oct 2015 07:28:00 GMT' }, '/': { body } });
    await addIntoRootfs(addOpts(s, { sources: [`${srv.url}/files/tool.sh`], dest: '/dl/', checksum: `sha256:${sha}` }));
    const st = statSync(join(s.rootfs, 'dl/tool.sh'));
    assert.equal(readFileSync(join(s.rootfs, 'dl/tool.sh'), 'utf8'), 'downloaded content\n');
    assert.equal(mode(st.mode), '600');
    assert.deepEqual([st.uid, st.gid], [0, 0]);
    assert.equal(st.mtime.toISOString(), '2015-10-21T07:28:00.000Z');
    // Without a trailing slash the destination is the file; a bare host is __unnamed__.
    await addIntoRootfs(addOpts(s, { sources: [`${srv.url}/files/tool.sh`], dest: '/named' }));
    assert.ok(statSync(join(s.rootfs, 'named')).isFile());
    await addIntoRootfs(addOpts(s, { sources: [`${srv.url}/`], dest: '/u/' }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'u')), ['__unnamed__']);
  });

  it('a checksum mismatch fails and adds nothing', async (t) => {
    const s = sandbox(t);
    const srv = await serve(t, { '/f': { body } });
    const wrong = 'sha256:' + '0'.repeat(64);
    await assert.rejects(addIntoRootfs(addOpts(s, { sources: [`${srv.url}/f`], dest: '/dl/', checksum: wrong, tmpDir: s.base })), (e: unknown) => {
      isCode('copy/checksum-mismatch')(e);
      assert.match((e as Error).message, new RegExp(sha));
      return true;
    });
    assert.ok(!existsSync(join(s.rootfs, 'dl')));
    assert.deepEqual(readdirSync(s.base).sort(), ['ctx', 'rootfs'], 'temp download dir removed');
  });

  it('rejects bad checksums, checksums for local files, and HTTP errors without leaking credentials', async (t) => {
    const s = sandbox(t);
    const srv = await serve(t, {});
    writeTree(s.ctx, { f: 'x' });
    await assert.rejects(addIntoRootfs(addOpts(s, { sources: [`${srv.url}/f`], dest: '/d', checksum: 'md5:abc' })), isCode('copy/invalid-checksum'));
    await assert.rejects(addIntoRootfs(addOpts(s, { sources: ['f'], dest: '/d', checksum: `sha256:${sha}` })), isCode('copy/checksum-not-url'));
    const withCreds = srv.url.replace('http://', 'http://user:hunter2@') + '/missing?token=s3cret';
    await assert.rejects(addIntoRootfs(addOpts(s, { sources: [withCreds], dest: '/d' })), (e: unknown) => {
      isCode('copy/download-failed')(e);
      assert.doesNotMatch((e as Error).message, /hunter2|s3cret/);
      assert.match((e as Error).message, /404/);
      return true;
    });
  });

  it('does not unpack downloads unless --unpack=true', async (t) => {
    const s = sandbox(t);
    makeArchive(s, 'a.tar.gz', 'z');
    const srv = await serve(t, { '/a.tar.gz': { body: readFileSync(join(s.ctx, 'a.tar.gz')) } });
    await addIntoRootfs(addOpts(s, { sources: [`${srv.url}/a.tar.gz`], dest: '/plain/' }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'plain')), ['a.tar.gz']);
    await addIntoRootfs(addOpts(s, { sources: [`${srv.url}/a.tar.gz`], dest: '/unpacked/', unpack: true }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'unpacked')).sort(), ['pkg', 'top.txt']);
  });

  it('names the file after the URL path', () => {
    assert.equal(urlFileName('https://example.com/a/b/c.tar.gz?x=1'), 'c.tar.gz');
    assert.equal(urlFileName('https://example.com/'), '__unnamed__');
    assert.equal(urlFileName('https://example.com'), '__unnamed__');
    assert.equal(urlFileName('https://example.com/dir/'), 'dir');
    assert.equal(urlFileName('https://example.com/my%20file'), 'my file');
  });
});

