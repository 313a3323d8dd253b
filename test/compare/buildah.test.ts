/**
 * The Buildah comparison suite: every case under test/fixtures/compare is built by stowage and by
 * the real Buildah 1.28 (vfs, chroot isolation) from one busybox base in one local registry, and
 * must show no UNEXPECTED difference. The unit tests below pin the harness's own logic (flattening
 * with whiteouts, config normalisation, known-difference matching) so a harness bug cannot turn
 * every comparison into "identical".
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tar from 'tar-stream';
import { applyLayer, FlatTree, type FsEntry } from '../../src/compare/flatten.js';
import { diffConfigs, diffFilesystems, normalizeConfig, renderReport, type CaseContext } from '../../src/compare/diff.js';
import { classify } from '../../src/compare/known.js';
import { caseFromDirectory, compareCase } from '../../src/compare/harness.js';
import { listCaseDirs, openCompareEnvironment, type OpenedCompareEnvironment } from '../../scripts/compare.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'compare');

interface TarItem {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  body?: string;
  mode?: number;
  uid?: number;
  linkname?: string;
}

async function tarBytes(items: TarItem[], gzip: boolean): Promise<Buffer> {
  const pack = tar.pack();
  for (const it of items) {
    pack.entry({ name: it.name, type: it.type ?? 'file', mode: it.mode ?? (it.type === 'directory' ? 0o755 : 0o644), uid: it.uid ?? 0, gid: 0, ...(it.linkname ? { linkname: it.linkname } : {}) }, it.body ?? '');
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  const raw = Buffer.concat(chunks);
  return gzip ? gzipSync(raw) : raw;
}

async function flatten(layers: TarItem[][]): Promise<Map<string, FsEntry>> {
  const tree = new FlatTree();
  let gzip = false;
  for (const l of layers) {
    // Alternate compression: the flattener must sniff it (Buildah pushes uncompressed to oci:).
    await applyLayer(tree, Readable.from([await tarBytes(l, gzip)]), new AbortController().signal);
    gzip = !gzip;
  }
  return new Map(tree.sorted().map((e) => [e.path, e]));
}

describe('flattening layers', () => {
  it('applies whiteouts, opaque dirs, type changes and hardlinks in order', async () => {
    const fs = await flatten([
      [
        { name: 'a/', type: 'directory' },
        { name: 'a/keep', body: 'k' },
        { name: 'a/gone', body: 'g' },
        { name: 'o/', type: 'directory' },
        { name: 'o/old', body: 'old' },
        { name: 'd/', type: 'directory' },
        { name: 'd/child', body: 'c' },
        { name: 'setuid', body: 's', mode: 0o4755, uid: 1000 },
      ],
      [
        { name: 'a/.wh.gone' },
        { name: 'o/', type: 'directory', mode: 0o700 },
        { name: 'o/.wh..wh..opq' },
        { name: 'o/new', body: 'new' },
        { name: 'd', type: 'symlink', linkname: 'a' },
        { name: 'hard', type: 'link', linkname: 'a/keep' },
      ],
    ]);
    assert.deepEqual([...fs.keys()], ['/', '/a', '/a/keep', '/d', '/hard', '/o', '/o/new', '/setuid']);
    assert.equal(fs.get('/o')!.mode, 0o700);
    assert.equal(fs.get('/d')!.type, 'symlink');
    assert.equal(fs.get('/d')!.linkTarget, 'a');
    assert.equal(fs.get('/hard')!.sha256, fs.get('/a/keep')!.sha256);
    assert.equal(fs.get('/hard')!.type, 'file');
    assert.deepEqual(fs.get('/hard')!.hardlinks, ['/a/keep']);
    assert.deepEqual(fs.get('/a/keep')!.hardlinks, ['/hard']);
    assert.equal(fs.get('/setuid')!.mode, 0o4755);
    assert.equal(fs.get('/setuid')!.uid, 1000);
    assert.equal(fs.get('/o/new')!.preview, 'new');
  });

  it('refuses a layer path that climbs out of the root', async () => {
    await assert.rejects(flatten([[{ name: '../escape', body: 'x' }]]), /outside the root/);
  });
});

describe('diffing and classifying', () => {
  const file = (path: string, body: Partial<FsEntry> = {}): FsEntry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, sha256: 'aa', xattrs: {}, ...body });
  const ctx = (dockerfile: string, s = {}, b = {}): CaseContext => ({ caseName: 't', dockerfile, stowageConfig: s, buildahConfig: b });

  it('reports each differing field, missing entries and content', () => {
    const d = diffFilesystems([file('/a', { mode: 0o600 }), file('/s')], [file('/a', { uid: 1, sha256: 'bb' }), file('/b')]);
    assert.deepEqual(
      d.map((x) => `${x.kind} ${'path' in x ? x.path : ''} ${'field' in x ? x.field : ''}`.trim()),
      ['content /a', 'entry /a mode', 'entry /a uid', 'only-in-buildah /b', 'only-in-stowage /s'],
    );
  });

  it('normalises unset config forms and compares keyed fields per key, ignoring key order', () => {
    assert.deepEqual(normalizeConfig({ Cmd: [], Entrypoint: null as never, WorkingDir: '', OnBuild: null, Labels: {} }), { WorkingDir: '/' });
    const s = normalizeConfig({ Env: ['A=1', 'B=2'], Healthcheck: { Test: ['NONE'], Interval: 0 } });
    const b = normalizeConfig({ Env: ['B=2', 'A=3'], Healthcheck: { Interval: 0, Test: ['NONE'] } });
    assert.deepEqual(diffConfigs(s, b), [{ kind: 'config', field: 'Env', key: 'A', stowage: '1', buildah: '3' }]);
  });

  it('marks only the differences a known entry explains', () => {
    const differences = [
      ...diffFilesystems([], [{ path: '/proc', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, xattrs: {} }]),
      ...diffFilesystems([], [file('/etc/hosts', { size: 9 })]), // not an empty stub: a real file
      ...diffFilesystems([{ path: '/w', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, xattrs: {} }], []),
    ];
    const classified = classify(differences, ctx('FROM x\nWORKDIR /w\n'));
    assert.deepEqual(
      classified.map((c) => c.known !== undefined),
      [true, false, true],
    );
    assert.match(renderReport('t', classified), /UNEXPECTED {2}\/etc\/hosts: only in buildah/);
    // The WORKDIR entry does not excuse a directory the Dockerfile never named.
    assert.equal(classify(differences.slice(2), ctx('FROM x\nWORKDIR /other\n'))[0]!.known, undefined);
  });

  it('explains EXPOSE ranges and casing only when the expanded form matches', () => {
    const s = { ExposedPorts: { '53/udp': {}, '80/tcp': {} } };
    const b = { ExposedPorts: { '53/UDP': {}, '81/tcp': {} } };
    const classified = classify(diffConfigs(s, b), ctx('', s, b));
    assert.deepEqual(
      classified.map((c) => [(c.difference as { key?: string }).key, c.known !== undefined]),
      [
        ['53/UDP', true],
        ['53/udp', true],
        ['80/tcp', false],
        ['81/tcp', false],
      ],
    );
  });
});

// Two cases at a time: each builder mostly waits on disk, and the suite must stay within ~3 minutes.
describe('stowage and buildah 1.28 build the same images', { timeout: 600_000, concurrency: 2 }, () => {
  let opened: OpenedCompareEnvironment;
  before(async () => {
    opened = await openCompareEnvironment(new AbortController().signal);
  });
  after(async () => {
    await opened?.close();
  });

  // The harness must see a difference when there is one: a case whose Buildah file differs on purpose.
  it('reports an UNEXPECTED difference in content and config', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-compare-neg-'));
    try {
      await writeFile(join(dir, 'Dockerfile'), 'ARG BUSYBOX\nFROM $BUSYBOX\nENV X=1\nRUN echo one > /f && chmod 600 /f\n');
      await writeFile(join(dir, 'Dockerfile.buildah'), 'ARG BUSYBOX\nFROM $BUSYBOX\nENV X=2\nRUN echo two > /f\n');
      const result = await compareCase(await caseFromDirectory(dir), opened.env);
      assert.equal(result.unexpected, 3, result.report);
      assert.match(result.report, /UNEXPECTED {2}\/f: content stowage="one\\n" buildah="two\\n"/);
      assert.match(result.report, /UNEXPECTED {2}\/f: mode stowage=0600 buildah=0644/);
      assert.match(result.report, /UNEXPECTED {2}config Env\[X\]: stowage="1" buildah="2"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  // xattrs cannot live in git, so this case makes its context here: a file capability and a user xattr.
  it('xattrs of context files (setcap, user.*)', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-compare-xattr-'));
    try {
      await mkdir(join(dir, 'context'));
      await writeFile(join(dir, 'context', 'cap'), 'c\n');
      await writeFile(join(dir, 'context', 'user'), 'u\n');
      try {
        execFileSync('setcap', ['cap_net_bind_service+ep', join(dir, 'context', 'cap')]);
        execFileSync('setfattr', ['-n', 'user.k', '-v', 'hi', join(dir, 'context', 'user')]);
      } catch {
        t.skip('setcap/setfattr unavailable or the temp filesystem has no xattrs');
        return;
      }
      await writeFile(join(dir, 'Dockerfile'), 'ARG BUSYBOX\nFROM $BUSYBOX\nCOPY cap user /x/\n');
      const result = await compareCase(await caseFromDirectory(dir), opened.env);
      assert.equal(result.unexpected, 0, result.report);
      // The xattr comparison ran: buildah's capability is seen (stowage drops context xattrs by choice).
      assert.match(result.report, /known: stowage choice .*\/x\/cap: xattrs stowage=\{\} buildah=\{"security.capability"/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const dir of listCaseDirs(FIXTURES)) {
    it(dir.slice(dir.lastIndexOf('/') + 1), async () => {
      const result = await compareCase(await caseFromDirectory(dir), opened.env);
      assert.equal(result.unexpected, 0, `unexpected differences:\n${result.report}`);
    });
  }
});
