import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarHeader } from '../../src/engine/layer/tar-format.js';
import { unpackLayer } from '../../src/engine/unpack.js';
import { tempDir } from './layer-helpers.js';

const isRoot = process.getuid?.() === 0;

interface E extends Partial<TarHeader> {
  name: string;
  body?: string;
}

function tar(entries: E[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const typeflag = e.typeflag ?? '0';
    parts.push(
      encodeHeader({ typeflag, mode: typeflag === '5' ? 0o755 : 0o644, uid: 0, gid: 0, size: typeflag === '0' ? body.length : 0, mtimeNs: 1_600_000_000_000_000_000n, linkname: '', devMajor: 0, devMinor: 0, xattrs: {}, ...e }),
    );
    if (typeflag === '0' && body.length > 0) parts.push(body, Buffer.alloc(padding(body.length)));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

/** A snapshot of everything in a directory (names, types, sizes, mtimes, link counts) to prove it unchanged. */
function fingerprint(dir: string): string {
  return execFileSync('find', [dir, '-printf', '%p %y %s %n %T@ %m\n'], { encoding: 'utf8' }).split('\n').sort().join('\n');
}

describe('unpackLayer against hostile layers', () => {
  let t: ReturnType<typeof tempDir>;
  let root: string;
  let outside: string;
  let before: string;
  beforeEach(() => {
    t = tempDir('unpack');
    root = join(t.path, 'root');
    outside = join(t.path, 'outside');
    mkdirSync(root);
    mkdirSync(outside);
    writeFileSync(join(outside, 'victim'), 'precious');
    mkdirSync(join(outside, 'd'));
    writeFileSync(join(outside, 'd', 'f'), 'precious too');
    before = fingerprint(outside);
  });
  afterEach(() => {
    assert.equal(fingerprint(outside), before, 'something outside the root changed');
    assert.ok(!existsSync(join(t.path, 'pwned')));
    t.cleanup();
  });

  const unpack = (entries: E[], asRoot = true): ReturnType<typeof unpackLayer> => unpackLayer([gzipSync(tar(entries))], root, { asRoot });

  it('rejects ../ in entry names', async () => {
    await assert.rejects(unpack([{ name: '../pwned', body: 'x' }]), (e: Error & { code?: string }) => e.code === 'unpack/unsafe-path');
    await assert.rejects(unpack([{ name: 'a/../../outside/victim', body: 'x' }]), (e: Error & { code?: string }) => e.code === 'unpack/unsafe-path');
  });

  it('treats absolute names as relative to the root', async () => {
    await unpack([{ name: join(outside, 'victim'), body: 'overwritten' }]);
    assert.equal(readFileSync(join(root, outside, 'victim'), 'utf8'), 'overwritten');
  });

  it('resolves an absolute symlink used as a parent inside the root', async () => {
    await unpack([
      { name: 'link', typeflag: '2', linkname: outside },
      { name: 'link/victim', body: 'overwritten' },
      { name: 'link/d/f', body: 'overwritten' },
    ]);
    assert.equal(readFileSync(join(root, outside, 'victim'), 'utf8'), 'overwritten');
    assert.equal(readlinkSync(join(root, 'link')), outside);
  });

  it('clamps a relative symlink climbing out at the root', async () => {
    await unpack([
      { name: 'a/', typeflag: '5' },
      { name: 'a/up', typeflag: '2', linkname: '../../../../../../..' },
      { name: 'a/up/pwned', body: 'x' },
    ]);
    assert.ok(existsSync(join(root, 'pwned')));
  });

  it('replaces a symlink by a file instead of writing through it', async () => {
    await unpack([
      { name: 'f', typeflag: '2', linkname: join(outside, 'victim') },
      { name: 'f', body: 'new content' },
    ]);
    assert.ok(lstatSync(join(root, 'f')).isFile());
    assert.equal(readFileSync(join(root, 'f'), 'utf8'), 'new content');
  });

  it('refuses hardlinks to paths outside the root', async () => {
    await assert.rejects(unpack([{ name: 'h', typeflag: '1', linkname: '../outside/victim' }]), (e: Error & { code?: string }) => e.code === 'unpack/unsafe-path');
    await assert.rejects(unpack([{ name: 'h', typeflag: '1', linkname: join(outside, 'victim') }]), (e: Error & { code?: string }) => e.code === 'unpack/bad-hardlink');
    await assert.rejects(
      unpack([
        { name: 'l', typeflag: '2', linkname: outside },
        { name: 'h', typeflag: '1', linkname: 'l/victim' },
      ]),
      (e: Error & { code?: string }) => e.code === 'unpack/bad-hardlink',
    );
    assert.equal(statSync(join(outside, 'victim')).nlink, 1);
  });

  it('does not apply deferred metadata through a directory later replaced by a symlink', async () => {
    await unpack([
      { name: 'd/', typeflag: '5', mode: 0o777 },
      { name: 'd/f', body: 'x', mode: 0o777, mtimeNs: 1n },
      { name: 'd', typeflag: '2', linkname: join(outside, 'd') },
    ]);
    assert.ok(lstatSync(join(root, 'd')).isSymbolicLink());
  });

  it('does not follow a symlinked parent for whiteouts', async () => {
    await unpack([
      { name: 'l', typeflag: '2', linkname: outside },
      { name: 'l/.wh.victim' },
      { name: 'l/d/.wh..wh..opq' },
    ]);
  });

  it('skips device nodes when not root, with a warning', async () => {
    const r = await unpack([{ name: 'null', typeflag: '3', devMajor: 1, devMinor: 3 }], false);
    assert.ok(!existsSync(join(root, 'null')));
    assert.match(r.warnings.join('\n'), /device node null/);
  });
});

describe('unpackLayer semantics', () => {
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => {
    t = tempDir('unpack');
  });
  afterEach(() => t.cleanup());

  it('applies whiteouts and opaque directories onto an existing tree', async () => {
    const root = t.path;
    mkdirSync(join(root, 'keep/sub'), { recursive: true });
    writeFileSync(join(root, 'keep/sub/old'), 'x');
    writeFileSync(join(root, 'keep/gone'), 'x');
    mkdirSync(join(root, 'opq/inner'), { recursive: true });
    writeFileSync(join(root, 'opq/inner/x'), 'x');
    writeFileSync(join(root, 'opq/y'), 'y');
    const r = await unpackLayer(
      [
        tar([
          { name: 'keep/', typeflag: '5' },
          { name: 'keep/.wh.gone' },
          { name: 'keep/.wh.sub' },
          { name: 'opq/', typeflag: '5' },
          { name: 'opq/.wh..wh..opq' },
          { name: 'opq/new', body: 'n' },
        ]),
      ],
      root,
      { asRoot: isRoot },
    );
    assert.deepEqual(readdirSync(join(root, 'keep')), []);
    assert.deepEqual(readdirSync(join(root, 'opq')), ['new']);
    assert.deepEqual(r.whiteouts.sort(), ['keep/gone', 'keep/sub']);
    assert.deepEqual(r.opaqueDirs, ['opq']);
  });

  it('keeps ownership, setuid/sticky modes, nanosecond mtimes (dirs after contents), hardlinks and xattrs', { skip: !isRoot && 'needs root' }, async () => {
    const root = t.path;
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex');
    await unpackLayer(
      [
        gzipSync(
          tar([
            { name: 'bin/', typeflag: '5', mode: 0o1777, uid: 12, gid: 34, mtimeNs: 1_500_000_000_987_654_321n },
            { name: 'bin/su', body: '#!/bin/sh\n', mode: 0o4755, uid: 5, gid: 6, mtimeNs: 1_400_000_000_000_000_001n, xattrs: { 'security.capability': cap, 'user.note': Buffer.from('hi') } },
            { name: 'bin/su2', typeflag: '1', linkname: 'bin/su' },
            { name: 'bin/sh', typeflag: '2', linkname: 'su', uid: 7, gid: 8 },
            { name: 'fifo', typeflag: '6', mode: 0o600 },
            { name: 'null', typeflag: '3', devMajor: 1, devMinor: 3, mode: 0o666 },
          ]),
        ),
      ],
      root,
      { asRoot: true },
    );
    const dir = lstatSync(join(root, 'bin'), { bigint: true });
    assert.equal(dir.mode & 0o7777n, 0o1777n);
    assert.equal(dir.uid, 12n);
    assert.equal(dir.mtimeNs, 1_500_000_000_987_654_321n);
    const su = lstatSync(join(root, 'bin/su'), { bigint: true });
    assert.equal(su.mode & 0o7777n, 0o4755n);
    assert.equal(su.uid, 5n);
    assert.equal(su.nlink, 2n);
    assert.equal(su.mtimeNs, 1_400_000_000_000_000_001n);
    assert.equal(lstatSync(join(root, 'bin/su2')).ino, Number(su.ino));
    assert.equal(lstatSync(join(root, 'bin/sh')).uid, 7);
    assert.ok(lstatSync(join(root, 'fifo')).isFIFO());
    const dev = lstatSync(join(root, 'null'));
    assert.ok(dev.isCharacterDevice());
    assert.equal(dev.rdev, (1 << 8) | 3);
    const xattr = execFileSync('python3', ['-c', `import os,sys; print(os.getxattr(sys.argv[1], 'security.capability').hex(), os.getxattr(sys.argv[1], 'user.note'))`, join(root, 'bin/su')], { encoding: 'utf8' });
    assert.equal(xattr.trim(), `${cap.toString('hex')} b'hi'`);
  });

  it('writes overlay whiteouts and opaque xattrs in overlay mode', { skip: !isRoot && 'needs root' }, async () => {
    const r = await unpackLayer(
      [tar([{ name: 'd/', typeflag: '5' }, { name: 'd/.wh..wh..opq' }, { name: 'd/.wh.x' }, { name: '.wh.top' }])],
      t.path,
      { asRoot: true, whiteouts: 'overlay' },
    );
    const wh = lstatSync(join(t.path, 'd/x'));
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    assert.ok(lstatSync(join(t.path, 'top')).isCharacterDevice());
    const opq = execFileSync('python3', ['-c', `import os,sys; print(os.getxattr(sys.argv[1], 'trusted.overlay.opaque'))`, join(t.path, 'd')], { encoding: 'utf8' });
    assert.equal(opq.trim(), "b'y'");
    assert.deepEqual(r.opaqueDirs, ['d']);
  });

  it('turns a path deleted and re-created as a directory in one layer into an opaque dir', async () => {
    const layer = tar([{ name: '.wh.d' }, { name: 'd/', typeflag: '5' }, { name: 'd/new', body: 'n' }, { name: '.wh.f' }, { name: 'f', body: 'f' }]);
    const rec = await unpackLayer([layer], t.path, { asRoot: isRoot, whiteouts: 'record' });
    assert.deepEqual(rec.whiteouts, []);
    assert.deepEqual(rec.opaqueDirs, ['d']);
    if (isRoot) {
      const ov = join(t.path, 'ov');
      mkdirSync(ov);
      await unpackLayer([layer], ov, { asRoot: true, whiteouts: 'overlay' });
      assert.ok(lstatSync(join(ov, 'd')).isDirectory());
      assert.ok(lstatSync(join(ov, 'f')).isFile());
      const opq = execFileSync('python3', ['-c', `import os,sys; print(os.getxattr(sys.argv[1], 'trusted.overlay.opaque'))`, join(ov, 'd')], { encoding: 'utf8' });
      assert.equal(opq.trim(), "b'y'");
    }
  });

  it('reports the diffId, reads plain and zstd tars, and rejects garbage', async () => {
    const plain = tar([{ name: 'a', body: 'A' }]);
    const { sha256Digest } = await import('../../src/image/digest.js');
    const r = await unpackLayer([plain], t.path, { asRoot: isRoot });
    assert.equal(r.diffId, sha256Digest(plain));
    const zst = execFileSync('zstd', ['-q', '-c'], { input: tar([{ name: 'z', body: 'Z' }]) });
    await unpackLayer([zst], t.path, { asRoot: isRoot });
    assert.equal(readFileSync(join(t.path, 'z'), 'utf8'), 'Z');
    await assert.rejects(unpackLayer([Buffer.alloc(700, 1)], t.path, { asRoot: isRoot }), (e: Error & { code?: string }) => e.code === 'layer/bad-tar');
    const gz = gzipSync(tar([{ name: 'big', body: 'y'.repeat(100_000) }]));
    await assert.rejects(unpackLayer([gz.subarray(0, gz.length - 20)], t.path, { asRoot: isRoot }), (e: Error & { code?: string }) => e.code === 'layer/bad-gzip');
  });
});
void symlinkSync;
