import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { ChangeSet } from '../../src/engine/layer/changeset.js';
import { readTar } from '../../src/engine/layer/tar-reader.js';
import { writeLayer } from '../../src/engine/layer/writer.js';
import { OverlaySnapshotter, WalkSnapshotter, detectSnapshotter, probeOverlay, type Rootfs, type Snapshotter } from '../../src/engine/snapshot/index.js';
import { scanTree, toChangeEntry } from '../../src/engine/snapshot/scan.js';
import { REC_BIRTH, REC_INO, REC_TYPE, diffPacked, forEachRecord, identicalRun, recordField, scanIndex, scanPacked, type PackedIndex } from '../../src/engine/snapshot/stat-index.js';
import type { Layer } from '../../src/image/blob.js';
import { UnpackedLayerStore } from '../../src/engine/unpacked-layers.js';
import { DirBlobStore, tempDir } from './layer-helpers.js';

const isRoot = process.getuid?.() === 0;
const overlayWhy = await probeOverlay();
const BASE_NS = 1_000_000_000_123_456_789n;
const EPOCH = 1_500_000_000;

interface TarRow {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  linkname: string;
  dev: string;
  xattrs: string;
  body: string;
}

async function rows(store: DirBlobStore, changes: ChangeSet): Promise<TarRow[]> {
  const r = await writeLayer(changes, store, { clampMtime: EPOCH });
  const out: TarRow[] = [];
  for await (const e of readTar([gunzipSync(readFileSync(store.pathOf(r.descriptor.digest)))])) {
    const parts: Buffer[] = [];
    await e.content((c) => parts.push(Buffer.from(c)));
    const h = e.header;
    const xattrs = Object.keys(h.xattrs).sort().map((k) => `${k}=${h.xattrs[k]!.toString('hex')}`).join(',');
    out.push({ name: h.name, type: h.typeflag, mode: h.mode, uid: h.uid, gid: h.gid, mtimeNs: h.mtimeNs, linkname: h.linkname, dev: `${h.devMajor},${h.devMinor}`, xattrs, body: Buffer.concat(parts).toString() });
  }
  return out;
}

function setxattr(path: string, name: string, hex: string): void {
  execFileSync('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]))', path, name, hex]);
}

/** Base tree for layer 1, all mtimes old (so clamping leaves them exact). */
function makeBase(dir: string): void {
  const files: Record<string, string> = {
    'bin/sh': '#!sh',
    'bin/tool': 'tool',
    'bin/ping': 'ping',
    'etc/base.conf': 'a=1\n',
    'etc/motd': 'hello',
    'home/user/file': 'mine',
    'var/cache/a/b': 'cached',
    'srv/data/x': 'x',
    'gone/file': 'g',
    'opq/old': 'old',
  };
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), c);
  }
  chmodSync(join(dir, 'bin/sh'), 0o755);
  mkdirSync(join(dir, 'proc'));
}

function changesOfTree(root: string): ChangeSet {
  const entries = [];
  for (const [rel, r] of scanTree(root)) {
    const e = toChangeEntry(rel, join(root, rel), r, undefined);
    if (e) entries.push({ ...e, mtimeNs: BASE_NS });
  }
  return { entries, deletions: [], opaqueDirs: [] };
}

type Step = { name: string; run: (root: string) => void; expect: (rows: TarRow[]) => void };
const names = (rs: TarRow[]): string[] => rs.map((r) => r.name);

const STEPS: Step[] = [
  {
    name: 'create',
    run: (r) => {
      writeFileSync(join(r, 'etc/new.conf'), 'new');
      mkdirSync(join(r, 'opt/app'), { recursive: true });
      writeFileSync(join(r, 'opt/app/main'), 'main');
    },
    expect: (rs) => assert.deepEqual(names(rs), ['etc/', 'etc/new.conf', 'opt/', 'opt/app/', 'opt/app/main']),
  },
  {
    name: 'modify',
    run: (r) => appendFileSync(join(r, 'etc/base.conf'), 'b=2\n'),
    expect: (rs) => {
      assert.deepEqual(names(rs), ['etc/', 'etc/base.conf']);
      assert.equal(rs[1]!.body, 'a=1\nb=2\n');
    },
  },
  {
    name: 'chmod and chown',
    run: (r) => {
      chmodSync(join(r, 'etc/base.conf'), 0o600);
      chownSync(join(r, 'home/user/file'), 1000, 1001);
    },
    expect: (rs) => {
      assert.deepEqual(names(rs), ['etc/', 'etc/base.conf', 'home/', 'home/user/', 'home/user/file']);
      assert.equal(rs[1]!.mode, 0o600);
      assert.equal(rs[4]!.uid, 1000);
      assert.equal(rs[4]!.gid, 1001);
      assert.equal(rs[3]!.mtimeNs, BASE_NS, 'an unchanged parent keeps its exact mtime');
    },
  },
  {
    name: 'delete file',
    run: (r) => unlinkSync(join(r, 'bin/tool')),
    expect: (rs) => assert.deepEqual(names(rs), ['bin/', 'bin/.wh.tool']),
  },
  {
    name: 'delete directory',
    run: (r) => rmSync(join(r, 'var/cache'), { recursive: true }),
    expect: (rs) => assert.deepEqual(names(rs), ['var/', 'var/.wh.cache']),
  },
  {
    name: 'replace directory by file',
    run: (r) => {
      rmSync(join(r, 'srv/data'), { recursive: true });
      writeFileSync(join(r, 'srv/data'), 'now a file');
    },
    expect: (rs) => assert.deepEqual(names(rs), ['srv/', 'srv/data']),
  },
  {
    name: 'replace file by directory',
    run: (r) => {
      unlinkSync(join(r, 'etc/motd'));
      mkdirSync(join(r, 'etc/motd'));
      writeFileSync(join(r, 'etc/motd/x'), 'x');
    },
    expect: (rs) => assert.deepEqual(names(rs), ['etc/', 'etc/motd/', 'etc/motd/.wh..wh..opq', 'etc/motd/x']),
  },
  {
    name: 'symlink and hardlink',
    run: (r) => {
      symlinkSync('../bin/sh', join(r, 'etc/sh-link'));
      linkSync(join(r, 'etc/new.conf'), join(r, 'etc/new-hard'));
    },
    expect: (rs) => {
      assert.deepEqual(names(rs), ['etc/', 'etc/new-hard', 'etc/new.conf', 'etc/sh-link']);
      assert.equal(rs[1]!.type, '0');
      assert.equal(rs[2]!.type, '1');
      assert.equal(rs[2]!.linkname, 'etc/new-hard');
      assert.equal(rs[3]!.linkname, '../bin/sh');
    },
  },
  {
    name: 'setuid',
    run: (r) => chmodSync(join(r, 'bin/sh'), 0o4755),
    expect: (rs) => {
      assert.deepEqual(names(rs), ['bin/', 'bin/sh']);
      assert.equal(rs[1]!.mode, 0o4755);
    },
  },
  {
    name: 'xattr',
    run: (r) => setxattr(join(r, 'bin/ping'), 'security.capability', '0100000200200000000000000000000000000000'),
    expect: (rs) => {
      assert.deepEqual(names(rs), ['bin/', 'bin/ping']);
      assert.equal(rs[1]!.xattrs, 'security.capability=0100000200200000000000000000000000000000');
    },
  },
  {
    name: 'injected mount points are ignored',
    run: (r) => {
      writeFileSync(join(r, 'etc/resolv.conf'), '');
      writeFileSync(join(r, 'proc/1'), 'not really');
      mkdirSync(join(r, 'run/secrets'), { recursive: true });
      writeFileSync(join(r, 'run/secrets/token'), 'secret');
    },
    expect: (rs) => assert.deepEqual(names(rs), ['etc/', 'run/']),
  },
  {
    name: 'names with spaces, newlines and glob characters',
    run: (r) => {
      mkdirSync(join(r, 'opt/[x]* ?'));
      writeFileSync(join(r, 'opt/[x]* ?/a b\nc'), 'odd');
    },
    expect: (rs) => {
      assert.deepEqual(names(rs), ['opt/', 'opt/[x]* ?/', 'opt/[x]* ?/a b\nc']);
      assert.equal(rs[2]!.body, 'odd');
    },
  },
  { name: 'no change', run: () => {}, expect: (rs) => assert.deepEqual(names(rs), []) },
];

describe('snapshotters', { skip: !isRoot && 'needs root (ownership, xattrs, overlay whiteouts in lowers)' }, () => {
  let t: ReturnType<typeof tempDir>;
  let store: DirBlobStore;
  let lowers: string[];
  const results = new Map<string, TarRow[][]>();

  before(async () => {
    t = tempDir('snap');
    const blobs = join(t.path, 'blobs');
    mkdirSync(blobs);
    store = new DirBlobStore(blobs);
    const base = join(t.path, 'base');
    makeBase(base);
    const l1 = await writeLayer(changesOfTree(base), store);
    // Layer 2 deletes gone/ and makes opq/ opaque (hiding opq/old), adding opq/new.
    writeFileSync(join(t.path, 'new'), 'new');
    const l2 = await writeLayer(
      {
        entries: [
          { path: 'opq', type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: BASE_NS, size: 0 },
          { path: 'opq/new', type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: BASE_NS, size: 3, source: join(t.path, 'new') },
        ],
        deletions: ['gone'],
        opaqueDirs: ['opq'],
      },
      store,
    );
    const unpacked = new UnpackedLayerStore(join(t.path, 'cache'));
    const layerOf = (r: typeof l1): Layer => ({ descriptor: r.descriptor, diffId: r.diffId, open: () => store.openRead(r.descriptor.digest) });
    // Two concurrent requests for one layer share a flight.
    const [d1, d1again] = await Promise.all([unpacked.ensureUnpacked(layerOf(l1)), unpacked.ensureUnpacked(layerOf(l1))]);
    assert.equal(d1, d1again);
    lowers = [d1, await unpacked.ensureUnpacked(layerOf(l2))];
  });
  after(() => t?.cleanup());

  const runAll = async (s: Snapshotter, label: string = s.kind): Promise<void> => {
    const rootfs: Rootfs = await s.prepare({ lowers, workDir: join(t.path, `work-${label}`) });
    try {
      assert.ok(!existsSync(join(rootfs.path, 'gone')), 'lower whiteout applied');
      assert.ok(!existsSync(join(rootfs.path, 'opq/old')), 'lower opaque dir applied');
      assert.equal(readFileSync(join(rootfs.path, 'opq/new'), 'utf8'), 'new');
      assert.equal(lstatSync(join(rootfs.path, 'etc'), { bigint: true }).mtimeNs, BASE_NS, 'nanosecond mtimes survive unpack and copy');
      const perStep: TarRow[][] = [];
      for (const [i, step] of STEPS.entries()) {
        await rootfs.ready();
        step.run(rootfs.path);
        // The last step's snapshot is final, as a stage's last writing step is.
        const changes = await rootfs.snapshot({ ignore: ['/run/secrets'], final: i === STEPS.length - 1 });
        const rs = await rows(store, changes);
        step.expect(rs);
        perStep.push(rs);
      }
      results.set(label, perStep);
    } finally {
      await rootfs.release();
    }
    assert.ok(!existsSync(join(t.path, `work-${label}`)), 'release removes the work dir');
    // The deletion itself runs detached (it must not delay a build's exit); it still finishes.
    const trash = (): string[] => readdirSync(t.path).filter((n) => n.startsWith(`.stowage-trash-work-${label}-`));
    for (let i = 0; i < 200 && trash().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(trash(), [], 'the detached removal finished');
  };

  it('walk: each step yields exactly its change', async () => {
    await runAll(new WalkSnapshotter());
  });

  it('walk without GNU find (the Node index scan) yields the same layers', async () => {
    await runAll(new WalkSnapshotter({ indexScanner: 'node' }), 'walk-node');
    const w = results.get('walk');
    const n = results.get('walk-node');
    assert.ok(w && n, 'both scanners ran');
    for (let i = 0; i < STEPS.length; i++) assert.deepEqual(n[i], w[i], `step ${STEPS[i]!.name}`);
  });

  it('overlay: each step yields exactly its change', { skip: overlayWhy !== undefined && `overlay unavailable: ${overlayWhy}` }, async () => {
    await runAll(new OverlaySnapshotter());
  });

  it('walk and overlay produce the same layer for every step', { skip: overlayWhy !== undefined && 'overlay unavailable' }, () => {
    const w = results.get('walk');
    const o = results.get('overlay');
    assert.ok(w && o, 'both snapshotters ran');
    for (let i = 0; i < STEPS.length; i++) assert.deepEqual(o[i], w[i], `step ${STEPS[i]!.name}`);
  });

  it('overlay: rootfs of one snapshotter share its xattr helper, each snapshot getting its own answers, also after another was released', { skip: overlayWhy !== undefined && 'overlay unavailable' }, async () => {
    const lower = join(t.path, 'shared-lower');
    mkdirSync(join(lower, 'd'), { recursive: true });
    writeFileSync(join(lower, 'd/old'), 'old');
    /** python3 processes this test process started (other tests' idle helpers stay as they are). */
    const helpers = (): number =>
      readdirSync('/proc').filter((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          return stat.includes('(python3)') && stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1] === String(process.pid);
        } catch {
          return false;
        }
      }).length;
    const before = helpers();
    const snapshotter = new OverlaySnapshotter();
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((n) => snapshotter.prepare({ lowers: [lower], workDir: join(t.path, `work-shared-${n}`) })));
    const released = new Set<Rootfs>();
    try {
      assert.equal(helpers() - before, 1, 'one helper for the three rootfs');
      // a replaces d (overlay marks the new upper dir opaque with an xattr), b only adds a file.
      rmSync(join(a!.path, 'd'), { recursive: true });
      mkdirSync(join(a!.path, 'd'));
      writeFileSync(join(b!.path, 'd/new'), 'new');
      const [sa, sb] = await Promise.all([a!.snapshot(), b!.snapshot()]);
      assert.deepEqual(sa.opaqueDirs, ['d']);
      assert.deepEqual(sb.opaqueDirs, []);
      assert.deepEqual(sb.entries.map((e) => e.path).sort(), ['d', 'd/new']);
      await a!.release();
      released.add(a!);
      rmSync(join(c!.path, 'd'), { recursive: true });
      mkdirSync(join(c!.path, 'd'));
      assert.deepEqual((await c!.snapshot()).opaqueDirs, ['d'], 'the helper still answers after a rootfs was released');
    } finally {
      for (const r of [a, b, c]) if (!released.has(r!)) await r!.release();
    }
  });

  it('overlay: a final snapshot owes its remount; a write after all gets a fresh upper; release unmounts', { skip: overlayWhy !== undefined && 'overlay unavailable' }, async () => {
    const lower = join(t.path, 'owed-lower');
    mkdirSync(lower, { recursive: true });
    writeFileSync(join(lower, 'base'), 'base');
    const rootfs = await new OverlaySnapshotter().prepare({ lowers: [lower], workDir: join(t.path, 'work-owed') });
    const mounted = (): boolean => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === rootfs.path);
    try {
      writeFileSync(join(rootfs.path, 'one'), '1');
      assert.deepEqual((await rootfs.snapshot({ final: true })).entries.map((e) => e.path), ['one']);
      assert.equal(readFileSync(join(rootfs.path, 'one'), 'utf8'), '1', 'readers see the final tree without a remount');
      await rootfs.ready();
      writeFileSync(join(rootfs.path, 'two'), '2');
      assert.deepEqual((await rootfs.snapshot()).entries.map((e) => e.path), ['two'], 'the owed remount gave the write a fresh upper');
      await rootfs.settle();
      assert.ok(mounted(), 'settle waits for the remount the snapshot started');
      assert.equal(readFileSync(join(rootfs.path, 'two'), 'utf8'), '2', 'and then the path shows the tree');
      writeFileSync(join(rootfs.path, 'three'), '3');
      assert.deepEqual((await rootfs.snapshot()).entries.map((e) => e.path), ['three']);
      // The remount this snapshot started is not awaited here: release must wait for it, then unmount.
    } finally {
      await rootfs.release();
    }
    assert.ok(!mounted(), 'nothing stays mounted');
  });

  it('overlay: a remount whose mount fails is reported by ready; release then leaves nothing mounted and no work dir', { skip: overlayWhy !== undefined && 'overlay unavailable' }, async () => {
    const lower = join(t.path, 'failing-lower');
    mkdirSync(lower, { recursive: true });
    writeFileSync(join(lower, 'base'), 'base');
    const workDir = join(t.path, 'work-failing-remount');
    const rootfs = await new OverlaySnapshotter().prepare({ lowers: [lower], workDir });
    const path = rootfs.path;
    writeFileSync(join(path, 'one'), '1');
    await rootfs.snapshot({ final: true });
    // The committed upper (now the top lower) disappears: the owed remount unmounts, then its mount fails.
    rmSync(join(workDir, 'u0'), { recursive: true });
    await assert.rejects(rootfs.ready(), (e: Error & { code?: string }) => e.code === 'snapshot/overlay-mount-failed');
    await rootfs.release();
    const mounted = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
    assert.ok(!mounted, `nothing stays mounted at ${path}`);
    assert.ok(!existsSync(workDir), 'the work dir is gone');
  });

  it('overlay mounts hundreds of lowers (short relative lowerdir names)', { skip: overlayWhy !== undefined && 'overlay unavailable' }, async () => {
    const many = join(t.path, 'many');
    const dirs: string[] = [];
    for (let i = 0; i < 300; i++) {
      const d = join(many, `a-rather-long-directory-name-for-layer-number-${i}`);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, `f${i % 7}`), String(i));
      dirs.push(d);
    }
    const rootfs = await new OverlaySnapshotter().prepare({ lowers: dirs, workDir: join(t.path, 'work-many') });
    try {
      assert.equal(readFileSync(join(rootfs.path, 'f5'), 'utf8'), '299', 'the last lower is on top');
      assert.equal(readFileSync(join(rootfs.path, 'f6'), 'utf8'), '293');
      assert.equal(readFileSync(join(rootfs.path, 'f0'), 'utf8'), '294');
    } finally {
      await rootfs.release();
    }
  });

  it('detectSnapshotter honours explicit choices', async () => {
    assert.equal((await detectSnapshotter('walk')).kind, 'walk');
    assert.equal((await detectSnapshotter('auto')).kind, overlayWhy === undefined ? 'overlay' : 'walk');
  });
});
describe('stat index', () => {
  it('find and the Node walk index the same paths, and ignored paths are matched literally, not as globs', async () => {
    const t = tempDir('statidx');
    try {
      for (const d of ['a[1]*/x', 'a1b/y', 'b c/d\ne/f', 'keep/z']) {
        mkdirSync(join(t.path, d, '..'), { recursive: true });
        writeFileSync(join(t.path, d), d);
      }
      symlinkSync('a1b', join(t.path, 'link'));
      const noDescend = new Set(['a[1]*', 'b c/d\ne']);
      const viaFind = await scanIndex(t.path, 'find', { noDescend });
      const viaNode = await scanIndex(t.path, 'node', { noDescend });
      const scratchDir = tempDir('statidx-scratch');
      try {
        const viaFile = await scanIndex(t.path, 'find', { noDescend, scratchFile: join(scratchDir.path, 'index.tmp') });
        assert.deepEqual(viaFile, viaFind, 'listing through a scratch file = through a pipe');
        assert.deepEqual(readdirSync(scratchDir.path), [], 'the scratch file is removed');
      } finally {
        scratchDir.cleanup();
      }
      const expected = ['a1b', 'a1b/y', 'a[1]*', 'b c', 'b c/d\ne', 'keep', 'keep/z', 'link'];
      assert.deepEqual([...viaFind.keys()].sort(), expected);
      assert.deepEqual([...viaNode.keys()].sort(), expected);
      for (const [rel, rec] of viaFind) {
        const n = viaNode.get(rel)!;
        assert.equal(recordField(rec, REC_TYPE), recordField(n, REC_TYPE), rel);
        assert.equal(recordField(rec, REC_INO), recordField(n, REC_INO), rel);
        assert.equal(recordField(rec, REC_BIRTH), recordField(n, REC_BIRTH), rel);
      }
      assert.equal(recordField(viaFind.get('link')!, REC_TYPE), 'l');
      assert.match(recordField(viaFind.get('keep')!, REC_BIRTH), /^\d+$/, 'directories carry their birth time');
    } finally {
      t.cleanup();
    }
  });
});

describe('packed index', () => {
  const pack = (records: Array<[string, string]>): PackedIndex => ({ records: Buffer.from(records.map(([p, r]) => `${r} ${p}\0`).join('')), dirBirths: new Map() });
  const rec = (n: number): string => `f 644 0 0 ${n} 1.5 1.5 ${n}`;

  it('finds exactly the changed, added and deleted records, whatever the walk order', () => {
    let seed = 11;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let round = 0; round < 40; round++) {
      const old: Array<[string, string]> = Array.from({ length: 600 }, (_, i) => [`d${i % 7}/f ${i}${i % 5 === 0 ? ' é' : ''}`, rec(i)]);
      const sparse = round % 3 === 0; // long identical runs between a few changes
      const now = old.map(([p, r]): [string, string] => [p, r]).filter(() => sparse || rnd(10) > 0);
      for (let k = sparse ? 1 : rnd(20); k > 0; k--) now.splice(rnd(now.length + 1), 0, [`new${round}-${k}`, rec(1000 + k)]);
      for (let k = sparse ? 1 : rnd(20); k > 0; k--) {
        const at = rnd(now.length);
        now[at] = [now[at]![0], `${now[at]![1]}0`];
      }
      // Some rounds reorder a stretch (a directory rewritten) or everything.
      if (round % 4 === 1) now.splice(50, 0, ...now.splice(100, 60).reverse());
      if (round % 10 === 9) now.reverse();
      const oldMap = new Map(old);
      const nowMap = new Map(now);
      const want = {
        changed: [...nowMap].filter(([p, r]) => oldMap.get(p) !== r).map(([p, r]) => `${p}|${r}|${oldMap.get(p) ?? '-'}`).sort(),
        deleted: [...oldMap.keys()].filter((p) => !nowMap.has(p)).sort(),
      };
      const got = diffPacked(pack(old), pack(now));
      assert.deepEqual({ changed: got.changed.map((c) => `${c.path}|${c.rec}|${c.old ?? '-'}`).sort(), deleted: [...got.deleted].sort() }, want, `round ${round}`);
    }
    assert.deepEqual(diffPacked(pack([]), pack([['a', rec(1)]])).changed.map((c) => c.path), ['a']);
    assert.deepEqual(diffPacked(pack([['a', rec(1)]]), pack([])).deleted, ['a']);
  });

  it('identicalRun measures the common prefix exactly', () => {
    const a = Buffer.alloc(100_000, 1);
    for (const at of [0, 1, 511, 512, 513, 4096, 77_777, 99_999]) {
      const b = Buffer.from(a);
      b[at] = 2;
      assert.equal(identicalRun(a, 0, b, 0), at);
      assert.equal(identicalRun(a, 10, b, 10), at >= 10 ? at - 10 : a.length - 10);
    }
    assert.equal(identicalRun(a, 0, Buffer.alloc(5000, 1), 0), 5000);
  });

  it('find and the Node walk pack the same paths and fields', async () => {
    const t = tempDir('packidx');
    try {
      for (const d of ['a b/x y', 'c\nd/e', 'keep/z', 'skip/inner']) {
        mkdirSync(join(t.path, d, '..'), { recursive: true });
        writeFileSync(join(t.path, d), d);
      }
      const noDescend = new Set(['skip']);
      const rows = async (scanner: 'find' | 'node'): Promise<string[]> => {
        const out: string[] = [];
        // What lies inside a noDescend path may or may not be listed; callers drop it.
        forEachRecord(await scanPacked(t.path, scanner, { noDescend }), (p, r) => void (p.startsWith('skip/') || out.push(`${p}|${recordField(r, REC_TYPE)}|${recordField(r, REC_INO)}`)));
        return out.sort();
      };
      const viaFind = await rows('find');
      assert.deepEqual(viaFind.map((r) => r.split('|')[0]).sort(), ['a b', 'a b/x y', 'c\nd', 'c\nd/e', 'keep', 'keep/z', 'skip']);
      assert.deepEqual(await rows('node'), viaFind);
    } finally {
      t.cleanup();
    }
  });
});
void utimesSync;
