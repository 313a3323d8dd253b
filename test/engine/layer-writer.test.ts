import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { constants as zlibConstants, gzipSync, gunzipSync } from 'node:zlib';
import { compareLayerPaths, normalizeLayerPath, planLayer, type ChangeEntry, type ChangeSet } from '../../src/engine/layer/changeset.js';
import { RLE_MEM_LEVEL, chooseBlockMethod, parallelGzip } from '../../src/engine/layer/gzip.js';
import { readTar } from '../../src/engine/layer/tar-reader.js';
import { encodeHeader } from '../../src/engine/layer/tar-format.js';
import { BufferPool, tarBlocks, writeLayer } from '../../src/engine/layer/writer.js';
import { sha256Digest } from '../../src/image/digest.js';
import { DirBlobStore, gnuTarList, tempDir } from './layer-helpers.js';

const T = 1_700_000_000_123_456_789n;

function entry(path: string, type: ChangeEntry['type'], extra: Partial<ChangeEntry> = {}): ChangeEntry {
  return { path, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, mtimeNs: T, size: 0, ...extra };
}

async function listOwn(blob: Buffer): Promise<Array<{ name: string; type: string; mtimeNs: bigint; linkname: string; mode: number; uid: number; xattrs: Record<string, Buffer>; body: Buffer }>> {
  const out = [];
  for await (const e of readTar([gunzipSync(blob)])) {
    const parts: Buffer[] = [];
    await e.content((c) => parts.push(Buffer.from(c)));
    out.push({ name: e.header.name, type: e.header.typeflag, mtimeNs: e.header.mtimeNs, linkname: e.header.linkname, mode: e.header.mode, uid: e.header.uid, xattrs: e.header.xattrs, body: Buffer.concat(parts) });
  }
  return out;
}

describe('planLayer', () => {
  it('puts parents first, the opaque marker first among its dir children, and prunes redundant whiteouts', () => {
    const items = planLayer({
      entries: [entry('b/-x', 'file'), entry('b', 'dir'), entry('a', 'file'), entry('c/d', 'file')],
      deletions: ['b/old', 'a/inner', 'gone', 'gone/child', 'e/f'],
      opaqueDirs: ['b'],
    });
    const names = items.map((i) => (i.kind === 'entry' ? i.entry.path + (i.entry.type === 'dir' ? '/' : '') : i.kind === 'opaque' ? i.dir + '/.wh..wh..opq' : i.path + ' (wh)'));
    // '.wh.gone' sorts bytewise before 'a'. a is a file replacing a directory: no a/.wh.*; b is opaque: no b/.wh.old; gone/child under deleted gone.
    assert.deepEqual(names, ['gone (wh)', 'a', 'b/', 'b/.wh..wh..opq', 'b/-x', 'c/', 'c/d', 'e/', 'e/f (wh)']);
  });

  it('turns later paths of one inode into hardlinks to the first', () => {
    const items = planLayer({ entries: [entry('z', 'file', { inodeKey: '1:2', size: 3 }), entry('y', 'file', { inodeKey: '1:2', size: 3 })], deletions: [], opaqueDirs: [] });
    const [first, second] = items.map((i) => (i.kind === 'entry' ? i.entry : undefined));
    assert.equal(first?.path, 'y');
    assert.equal(first?.type, 'file');
    assert.equal(second?.type, 'hardlink');
    assert.equal(second?.linkTarget, 'y');
  });
});

describe('normalizeLayerPath', () => {
  it('keeps normal paths as they are and normalises or refuses the rest', () => {
    for (const p of ['a', 'a/b/c', '.a', '...', 'a/.b/..c', 'é/中']) assert.equal(normalizeLayerPath(p), p);
    const cases: Array<[string, string | undefined]> = [['/a', 'a'], ['a/', 'a'], ['a//b', 'a/b'], ['a/./b', 'a/b'], ['./a', 'a'], ['.//', undefined], ['', undefined], ['/', undefined], ['.', undefined], ['..', undefined], ['a/..', undefined], ['../a', undefined], ['a/../b', undefined]];
    for (const [raw, want] of cases) assert.equal(normalizeLayerPath(raw), want, JSON.stringify(raw));
  });
});

describe('compareLayerPaths', () => {
  it('orders as the component-wise comparison of UTF-8 bytes does, for ASCII, accents, CJK and astral names', () => {
    const alphabet = ['a', 'b', '-', '.', '/', '0', '~', 'é', 'ÿ', '中', '\uffff', '\ue000', '😀', '\u{10ffff}'];
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const paths = new Set<string>();
    while (paths.size < 400) {
      let p = '';
      for (let i = 0, n = 1 + rnd(6); i < n; i++) p += alphabet[rnd(alphabet.length)];
      const norm = p.split('/').filter((c) => c !== '').join('/');
      if (norm !== '') paths.add(norm);
    }
    const byBytes = (a: string, b: string): number => {
      const x = a.split('/').map((c) => Buffer.from(c));
      const y = b.split('/').map((c) => Buffer.from(c));
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const c = Buffer.compare(x[i]!, y[i]!);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    };
    const list = [...paths];
    assert.deepEqual([...list].sort(compareLayerPaths), [...list].sort(byBytes));
  });
});

describe('encodeHeader', () => {
  it('writes the same bytes as ever (layer digests must not drift between versions)', () => {
    const base = { typeflag: '0', mode: 0o644, uid: 0, gid: 0, size: 0, mtimeNs: 0n, linkname: '', devMajor: 0, devMinor: 0, xattrs: {} as Record<string, Buffer> };
    const headers = [
      { ...base, name: 'a' },
      { ...base, name: 'dir/', typeflag: '5', mode: 0o1777, uid: 1000, gid: 1000, mtimeNs: 1_700_000_000_123_456_789n },
      { ...base, name: 'é'.repeat(60) + '/file', size: 12345, mtimeNs: -1_500_000_000n },
      { ...base, name: 'l', typeflag: '2', linkname: '中'.repeat(40), uid: 0o7777777 + 1, gid: 4_000_000_000 },
      { ...base, name: 'big', size: 0o77777777777 + 1, mtimeNs: 10n ** 21n },
      { ...base, name: 'x/cap', xattrs: { 'security.capability': Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0]), 'user.a': Buffer.alloc(600, 0x61) }, mtimeNs: 1_600_000_000_000_000_000n },
      { ...base, name: 'dev/null', typeflag: '3', devMajor: 1, devMinor: 3, mode: 0o666 },
    ];
    // Digest of these headers as the first implementation encoded them (string-built fields, concat).
    const golden = '32ed3ef1d1850e673aeb782b86be42824c8dc7fa704d790c1b4c0f184b217d8b';
    const scratch = Buffer.alloc(4096);
    const fresh = Buffer.concat(headers.map((h) => encodeHeader(h)));
    const viaScratch = Buffer.concat(headers.map((h) => Buffer.from(encodeHeader(h, scratch))));
    assert.equal(sha256Digest(fresh), `sha256:${golden}`);
    assert.equal(sha256Digest(viaScratch), `sha256:${golden}`);
  });
});

describe('writeLayer', () => {
  let tmp: ReturnType<typeof tempDir>;
  let store: DirBlobStore;
  let changes: ChangeSet;
  before(() => {
    tmp = tempDir('layer');
    mkdirSync(join(tmp.path, 'blobs'));
    mkdirSync(join(tmp.path, 'src'));
    store = new DirBlobStore(join(tmp.path, 'blobs'));
    writeFileSync(join(tmp.path, 'src/hello'), 'hello world\n');
    const long = 'x'.repeat(150);
    writeFileSync(join(tmp.path, 'src/long'), 'long name');
    changes = {
      entries: [
        entry('usr/bin/hello', 'file', { mode: 0o4755, size: 12, source: join(tmp.path, 'src/hello'), xattrs: { 'security.capability': Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0]) } }),
        entry('usr', 'dir', { mode: 0o1777, uid: 1000, gid: 1000 }),
        entry('usr/bin', 'dir'),
        entry(`usr/${long}`, 'file', { size: 9, source: join(tmp.path, 'src/long') }),
        entry('usr/link', 'symlink', { linkTarget: '../etc/passwd', mode: 0o777 }),
        entry('dev/null', 'char', { devMajor: 1, devMinor: 3, mode: 0o666 }),
        entry('dev', 'dir'),
        entry('fifo', 'fifo'),
      ],
      deletions: ['etc/shadow'],
      opaqueDirs: [],
    };
  });
  after(() => tmp.cleanup());

  it('is deterministic and produces a valid gzip that GNU tar reads', async () => {
    const a = await writeLayer(changes, store);
    const b = await writeLayer(changes, store);
    assert.equal(a.descriptor.digest, b.descriptor.digest);
    assert.equal(a.diffId, b.diffId);
    assert.equal(a.descriptor.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    const blob = readFileSync(store.pathOf(a.descriptor.digest));
    assert.equal(a.descriptor.size, blob.length);
    assert.equal(sha256Digest(gunzipSync(blob)), a.diffId);
    execFileSync('gzip', ['-t', store.pathOf(a.descriptor.digest)]);
    const lines = gnuTarList(store.pathOf(a.descriptor.digest));
    const names = lines.map((l) => l.split(/\s+/).slice(5).join(' '));
    assert.deepEqual(names, [
      'dev/',
      'dev/null',
      'etc/',
      'etc/.wh.shadow',
      'fifo',
      'usr/',
      'usr/bin/',
      'usr/bin/hello',
      'usr/link -> ../etc/passwd',
      `usr/${'x'.repeat(150)}`,
    ]);
    assert.match(lines[0]!, /^drwxr-xr-x 0\/0 /);
    assert.match(lines[1]!, /^crw-rw-rw- 0\/0 +1,3 /);
    assert.match(lines[5]!, /^drwxrwxrwt 1000\/1000 /);
    assert.match(lines[7]!, /^-rwsr-xr-x 0\/0 +12 /);
  });

  it('keeps nanosecond mtimes and xattrs in PAX records, and clamps with clampMtime', async () => {
    const a = await writeLayer(changes, store);
    const own = await listOwn(readFileSync(store.pathOf(a.descriptor.digest)));
    const hello = own.find((e) => e.name === 'usr/bin/hello')!;
    assert.equal(hello.mtimeNs, T);
    assert.equal(hello.body.toString(), 'hello world\n');
    assert.deepEqual([...hello.xattrs['security.capability']!], [1, 0, 0, 2, 0, 0x20, 0, 0]);
    assert.equal(hello.mode, 0o4755);
    const clamped = await writeLayer(changes, store, { clampMtime: 1_000_000 });
    assert.notEqual(clamped.diffId, a.diffId);
    for (const e of await listOwn(readFileSync(store.pathOf(clamped.descriptor.digest)))) {
      assert.ok(e.mtimeNs <= 1_000_000n * 1_000_000_000n, `${e.name} not clamped`);
    }
    // GNU tar agrees on the PAX mtime.
    const full = execFileSync('tar', ['--full-time', '-tvf', store.pathOf(a.descriptor.digest), 'usr/bin/hello'], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    assert.match(full, /2023-11-14 22:13:20\.123456789/);
  });

  it('packs small files into batches and streams files larger than a batch, byte-exact through GNU tar', async () => {
    const dir = join(tmp.path, 'sizes');
    mkdirSync(dir);
    // Sizes around the 1 MiB batch and the 512-byte block: a batch filled exactly, one overflowing,
    // a file bigger than a batch between small ones, empty files.
    const sizes = [0, 1, 511, 512, 513, 1024 * 1024 - 1024, 700_000, 3 * 1024 * 1024 + 5, 10, 1024 * 1024, 0, 999_999];
    const entries = sizes.map((size, i) => {
      const name = `f${String(i).padStart(2, '0')}`;
      writeFileSync(join(dir, name), randomBytes(size));
      return entry(`d/${name}`, 'file', { size, source: join(dir, name) });
    });
    const r = await writeLayer({ entries: [entry('d', 'dir'), ...entries], deletions: [], opaqueDirs: [] }, store);
    const out = join(tmp.path, 'sizes-out');
    mkdirSync(out);
    execFileSync('tar', ['-xzf', store.pathOf(r.descriptor.digest), '-C', out]);
    for (let i = 0; i < sizes.length; i++) {
      const name = `f${String(i).padStart(2, '0')}`;
      assert.ok(readFileSync(join(out, 'd', name)).equals(readFileSync(join(dir, name))), `${name} (${sizes[i]} bytes)`);
    }
    assert.equal(r.tarSize % 512, 0);
  });

  it('writes the same blob as gzipping the whole tar at once, across many reused block buffers', async () => {
    const dir = join(tmp.path, 'many');
    mkdirSync(dir);
    // ~13 MiB: more blocks than the pool keeps, so buffers are reused while others are compressed.
    const entries = Array.from({ length: 40 }, (_, i) => {
      const size = 100_000 + i * 7_919;
      const body = i % 3 === 0 ? Buffer.from('text line\n'.repeat(size / 10 + 1)).subarray(0, size) : randomBytes(size);
      writeFileSync(join(dir, `f${i}`), body);
      return entry(`m/f${i}`, 'file', { size, source: join(dir, `f${i}`) });
    });
    entries.push(entry('m/big', 'file', { size: 5 * 1024 * 1024 + 3, source: join(dir, 'big') }));
    writeFileSync(join(dir, 'big'), randomBytes(5 * 1024 * 1024 + 3));
    const r = await writeLayer({ entries: [entry('m', 'dir'), ...entries], deletions: [], opaqueDirs: [] }, store);
    const blob = readFileSync(store.pathOf(r.descriptor.digest));
    const tar = gunzipSync(blob);
    assert.equal(sha256Digest(tar), r.diffId);
    assert.equal(tar.length, r.tarSize);
    // The same tar fed in odd-sized chunks (the copying path) gives the same members.
    const odd = async function* (): AsyncGenerator<Buffer> {
      for (let i = 0; i < tar.length; i += 777_777) yield tar.subarray(i, i + 777_777);
    };
    const members: Buffer[] = [];
    for await (const m of parallelGzip(odd())) members.push(m);
    assert.ok(Buffer.concat(members).equals(blob), 'block boundaries depend only on offsets, not on how the tar was chunked');
    const out = join(tmp.path, 'many-out');
    mkdirSync(out);
    execFileSync('tar', ['-xzf', store.pathOf(r.descriptor.digest), '-C', out]);
    for (const e of entries) assert.ok(readFileSync(join(out, e.path)).equals(readFileSync(e.source!)), e.path);
  });

  it('refuses a source that is a symlink (never follows one out of the rootfs)', async () => {
    const link = join(tmp.path, 'src/link-to-hello');
    symlinkSync(join(tmp.path, 'src/hello'), link);
    const bad: ChangeSet = { entries: [entry('f', 'file', { size: 12, source: link })], deletions: [], opaqueDirs: [] };
    await assert.rejects(writeLayer(bad, store), (e: NodeJS.ErrnoException) => e.code === 'ELOOP');
  });

  it('stops on abort without leaving a temp file', async () => {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(writeLayer(changes, store, { signal: ac.signal }), (e: Error) => e.name === 'AbortError');
    assert.doesNotMatch(execFileSync('ls', ['-a', join(tmp.path, 'blobs')], { encoding: 'utf8' }), /\.tmp-/);
  });

  it('notices a source file that grew, in the middle of a block and when it ends exactly at a block boundary', async () => {
    const src = join(tmp.path, 'src/grown');
    writeFileSync(src, Buffer.alloc(3000, 'x'));
    // Recorded one byte short of what is there: the read asks for one byte more and gets it.
    const grown: ChangeSet = { entries: [entry('f', 'file', { size: 2999, source: src })], deletions: [], opaqueDirs: [] };
    await assert.rejects(writeLayer(grown, store), (e: Error & { code?: string }) => e.code === 'layer/file-changed');
    // Header (512, plus a PAX header for the nanosecond mtime) + contents filling the 4 KiB block
    // exactly: no room for the extra byte, so the separate probe read has to catch it.
    const pool = new BufferPool(4096, 2);
    const items = planLayer({ entries: [entry('g', 'file', { size: 4096 - 512, source: src, mtimeNs: 0n })], deletions: [], opaqueDirs: [] });
    const blocks = async (): Promise<number> => {
      let n = 0;
      for await (const b of tarBlocks(items, { pool })) n += b.length;
      return n;
    };
    writeFileSync(src, Buffer.alloc(4096 - 512 + 1, 'x'));
    await assert.rejects(blocks(), (e: Error & { code?: string }) => e.code === 'layer/file-changed');
    writeFileSync(src, Buffer.alloc(4096 - 512, 'x'));
    assert.equal(await blocks(), 4096 + 1024, 'the same file at its recorded size ends on the boundary, then the end-of-archive blocks');
  });

  it('fails without leaving a blob when a source file changes size', async () => {
    const bad: ChangeSet = { entries: [entry('f', 'file', { size: 100, source: join(tmp.path, 'src/hello') })], deletions: [], opaqueDirs: [] };
    await assert.rejects(writeLayer(bad, store), (e: Error & { code?: string }) => e.code === 'layer/file-changed');
    const leftovers = execFileSync('ls', ['-a', join(tmp.path, 'blobs')], { encoding: 'utf8' });
    assert.doesNotMatch(leftovers, /\.tmp-/);
  });
});

describe('parallelGzip', () => {
  it('emits ordered independent members that gunzip back to the input, deterministically', async () => {
    const input = Buffer.concat([randomBytes(300_000), Buffer.alloc(700_000, 7), randomBytes(123_457)]);
    const chunks = (): AsyncGenerator<Buffer> =>
      (async function* () {
        for (let i = 0; i < input.length; i += 65_536) yield input.subarray(i, i + 65_536);
      })();
    const run = async (): Promise<Buffer> => {
      const out: Buffer[] = [];
      for await (const m of parallelGzip(chunks(), { blockSize: 256 * 1024 })) out.push(m);
      return Buffer.concat(out);
    };
    const a = await run();
    const b = await run();
    assert.ok(a.equals(b));
    assert.ok(gunzipSync(a).equals(input));
    // 1,123,457 bytes in 256 KiB blocks = 5 members, each starting with the gzip magic.
    let members = 0;
    for (let i = a.indexOf(Buffer.from([0x1f, 0x8b, 8])); i >= 0; i = a.indexOf(Buffer.from([0x1f, 0x8b, 8]), i + 1)) members++;
    assert.ok(members >= 5);
    const t = tempDir('gz');
    try {
      writeFileSync(join(t.path, 'x.gz'), a);
      execFileSync('gzip', ['-t', join(t.path, 'x.gz')]);
      const viaGzip = execFileSync('gzip', ['-dc', join(t.path, 'x.gz')], { maxBuffer: 1 << 24 });
      assert.ok(viaGzip.equals(input));
    } finally {
      t.cleanup();
    }
  });

  it('stores incompressible blocks, RLE-compresses random data between zero runs, deflates blocks that compress anywhere in their samples', async () => {
    const blockSize = 256 * 1024;
    const random = randomBytes(blockSize);
    const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(Math.ceil(blockSize / 44))).subarray(0, blockSize);
    const mixed = Buffer.concat([randomBytes(blockSize / 2), Buffer.alloc(blockSize / 2, 1)]);
    const members = async (input: Buffer, store?: boolean): Promise<Buffer[]> => {
      const out: Buffer[] = [];
      const o = store === undefined ? { blockSize } : { blockSize, adaptive: store };
      for await (const m of parallelGzip((async function* () { yield input; })(), o)) out.push(m);
      return out;
    };
    const [stored] = await members(random);
    assert.ok(gunzipSync(stored!).equals(random));
    // One output buffer for the whole member, as the writer does (stored block sizes follow it).
    const chunkSize = blockSize + (blockSize >> 8) + 1024;
    assert.ok(stored!.equals(gzipSync(random, { level: 0, chunkSize })), 'a random block is stored (level 0), not searched for matches');
    assert.ok(stored!.length < blockSize + 100, 'stored is no larger than input plus framing');
    const [deflated] = await members(random, false);
    assert.ok(deflated!.equals(gzipSync(random, { level: 6, chunkSize })), 'with storing off, deflate runs at the level asked');
    assert.ok(!deflated!.equals(stored!));
    const [t] = await members(text);
    assert.ok(t!.length < blockSize / 20, 'text is deflated');
    const [m] = await members(mixed);
    assert.ok(m!.length < blockSize * 0.6, 'half-compressible block is deflated');
    assert.ok(gunzipSync(m!).equals(mixed));
    // Random file contents between tar-like zero runs: only the runs are worth finding.
    const tarLike = Buffer.concat(Array.from({ length: 26 }, () => [Buffer.alloc(512), randomBytes(9216)]).flat()).subarray(0, blockSize);
    const [r] = await members(tarLike);
    assert.ok(r!.equals(gzipSync(tarLike, { level: 6, strategy: zlibConstants.Z_RLE, memLevel: RLE_MEM_LEVEL, chunkSize })), 'zero runs between random data: RLE');
    assert.ok(r!.length < blockSize * 0.96, 'the runs are compressed');
    // base64 of random bytes: 6 bits of entropy per byte, nothing for a match search to find.
    const b64 = Buffer.from(randomBytes(blockSize).toString('base64')).subarray(0, blockSize);
    const [b] = await members(b64);
    assert.ok(b!.equals(gzipSync(b64, { level: 6, strategy: zlibConstants.Z_RLE, memLevel: RLE_MEM_LEVEL, chunkSize })), 'base64: RLE');
    assert.ok(b!.length < blockSize * 0.8, 'base64 still gets its entropy coding');
  });

  it('judges a block from its bytes alone: what its samples would gain from a match search decides', () => {
    const size = 1024 * 1024;
    const random = randomBytes(size);
    assert.equal(chooseBlockMethod(random), 'store');
    assert.equal(chooseBlockMethod(Buffer.from(random.toString('base64')).subarray(0, size)), 'rle', 'base64: entropy coding only');
    // A layer's tar of base64 files: headers and zero padding between the contents (runs, no matches worth a search).
    const tarLike = Buffer.concat(Array.from({ length: 100 }, (_, i) => [Buffer.from(`d0/f${i}\0`.padEnd(512, '\0')), Buffer.from(randomBytes(7_500).toString('base64'))]).flat()).subarray(0, size);
    assert.equal(chooseBlockMethod(tarLike), 'rle');
    assert.equal(chooseBlockMethod(Buffer.alloc(size)), 'rle', 'one long run');
    const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa', 'lambda'];
    const text = Buffer.from(Array.from({ length: 200_000 }, (_, i) => words[(i * 7919) % 11]!).join(' ')).subarray(0, size);
    assert.equal(chooseBlockMethod(text), 'deflate', 'text repeats words');
    // Repeats 1-2 KiB apart in otherwise random bytes (similar small files): matches, no runs.
    const unit = randomBytes(1500);
    const repeats = Buffer.concat(Array.from({ length: 700 }, (_, i) => Buffer.concat([unit.subarray(0, 1200), randomBytes(300 + (i % 7))]))).subarray(0, size);
    assert.equal(chooseBlockMethod(repeats), 'deflate');
    // The same bytes, the same answer; small blocks are always deflated.
    assert.equal(chooseBlockMethod(Buffer.from(random)), 'store');
    assert.equal(chooseBlockMethod(random.subarray(0, 100_000)), 'deflate');
  });
});
void createReadStream;
