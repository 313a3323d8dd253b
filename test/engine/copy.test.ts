import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openDirContext } from '../../src/engine/context/context.js';
import { copyIntoRootfs, resolveDest } from '../../src/engine/copy/copy.js';
import { StowageError } from '../../src/util/errors.js';
import { copyOpts, mode, sandbox, writeTree } from './copy-fixtures.js';

const isCode = (code: string) => (e: unknown) => {
  assert.ok(e instanceof StowageError, `expected StowageError ${code}, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  return true;
};

describe('COPY destination rules', () => {
  it('resolveDest: WORKDIR-relative, cleaned, trailing slash kept as "directory"', () => {
    assert.deepEqual(resolveDest('rel/x', '/w'), { path: '/w/rel/x', isDir: false });
    assert.deepEqual(resolveDest('rel/', '/w'), { path: '/w/rel', isDir: true });
    assert.deepEqual(resolveDest('.', '/w'), { path: '/w', isDir: true });
    assert.deepEqual(resolveDest('/a/../../b/./c/', '/w'), { path: '/b/c', isDir: true });
    assert.deepEqual(resolveDest('/', '/w'), { path: '/', isDir: true });
  });

  it('a file to a path without slash is written as that path; with slash, inside it', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'f.txt': 'hello' });
    await copyIntoRootfs(copyOpts(s, { sources: ['f.txt'], dest: '/out/name' }));
    assert.equal(readFileSync(join(s.rootfs, 'out/name'), 'utf8'), 'hello');
    await copyIntoRootfs(copyOpts(s, { sources: ['f.txt'], dest: '/dir/' }));
    assert.equal(readFileSync(join(s.rootfs, 'dir/f.txt'), 'utf8'), 'hello');
  });

  it('a file onto an existing directory goes inside it', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'f.txt': 'x' });
    mkdirSync(join(s.rootfs, 'existing'));
    await copyIntoRootfs(copyOpts(s, { sources: ['f.txt'], dest: '/existing' }));
    assert.equal(readFileSync(join(s.rootfs, 'existing/f.txt'), 'utf8'), 'x');
  });

  it('a relative destination is relative to WORKDIR ("." is WORKDIR itself)', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'f.txt': 'x' });
    await copyIntoRootfs(copyOpts(s, { sources: ['f.txt'], dest: 'sub/', workdir: '/app' }));
    await copyIntoRootfs(copyOpts(s, { sources: ['f.txt'], dest: '.', workdir: '/app' }));
    assert.ok(existsSync(join(s.rootfs, 'app/sub/f.txt')));
    assert.ok(existsSync(join(s.rootfs, 'app/f.txt')));
  });

  it('created parents are 0755 root-owned, or take --chmod/--chown (BuildKit)', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { foo: 'x' });
    await copyIntoRootfs(copyOpts(s, { sources: ['foo'], dest: '/plain/deep/foo' }));
    assert.equal(mode(statSync(join(s.rootfs, 'plain')).mode), '755');
    assert.equal(mode(statSync(join(s.rootfs, 'plain/deep')).mode), '755');
    await copyIntoRootfs(copyOpts(s, { sources: ['foo'], dest: '/parent/foo', chmod: '777', chown: { uid: 1000, gid: 1001 } }));
    const p = statSync(join(s.rootfs, 'parent'));
    assert.equal(mode(p.mode), '777');
    assert.deepEqual([p.uid, p.gid], [1000, 1001]);
    assert.equal(mode(statSync(join(s.rootfs, 'parent/foo')).mode), '777');
  });
});

describe('COPY directory sources', () => {
  it('copies the contents, not the directory; the created top dir takes the source metadata', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'dir/a': 'A', 'dir/sub/b': 'B' });
    chmodSync(join(s.ctx, 'dir'), 0o750);
    await copyIntoRootfs(copyOpts(s, { sources: ['dir'], dest: '/app' }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'app')).sort(), ['a', 'sub']);
    assert.equal(readFileSync(join(s.rootfs, 'app/sub/b'), 'utf8'), 'B');
    assert.equal(mode(statSync(join(s.rootfs, 'app')).mode), '750');
    // With a trailing slash the destination is made first (mkdir -p, 0755), so it keeps that.
    await copyIntoRootfs(copyOpts(s, { sources: ['dir'], dest: '/app2/' }));
    assert.equal(mode(statSync(join(s.rootfs, 'app2')).mode), '755');
  });

  it('merges into an existing dir: top keeps its metadata, existing subdirs get the source mode', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'dir/sub/new': 'n', 'dir/top': 't' });
    chmodSync(join(s.ctx, 'dir'), 0o755);
    chmodSync(join(s.ctx, 'dir/sub'), 0o751);
    writeTree(s.rootfs, { 'app/old': 'o', 'app/sub/old2': 'o2' });
    chmodSync(join(s.rootfs, 'app'), 0o700);
    chmodSync(join(s.rootfs, 'app/sub'), 0o700);
    chownSync(join(s.rootfs, 'app'), 33, 33);
    await copyIntoRootfs(copyOpts(s, { sources: ['dir'], dest: '/app' }));
    const top = statSync(join(s.rootfs, 'app'));
    assert.equal(mode(top.mode), '700');
    assert.deepEqual([top.uid, top.gid], [33, 33]);
    assert.equal(mode(statSync(join(s.rootfs, 'app/sub')).mode), '751');
    assert.deepEqual(readdirSync(join(s.rootfs, 'app/sub')).sort(), ['new', 'old2']);
    assert.ok(existsSync(join(s.rootfs, 'app/old')));
  });

  it('a directory onto an existing non-directory is an error', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'dir/a': 'A' });
    writeTree(s.rootfs, { target: 'file' });
    await assert.rejects(copyIntoRootfs(copyOpts(s, { sources: ['dir'], dest: '/target' })), isCode('copy/not-a-directory'));
    assert.equal(readFileSync(join(s.rootfs, 'target'), 'utf8'), 'file');
  });

  it('keeps symlinks inside copied dirs as symlinks, hardlinks as hardlinks, mode and mtime', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'dir/real': 'r', 'dir/exe': '#!/bin/sh\n' });
    symlinkSync('/etc/passwd', join(s.ctx, 'dir/abs-link'));
    symlinkSync('real', join(s.ctx, 'dir/rel-link'));
    linkSync(join(s.ctx, 'dir/real'), join(s.ctx, 'dir/hard'));
    chmodSync(join(s.ctx, 'dir/exe'), 0o4755);
    const when = new Date('2001-02-03T04:05:06Z');
    utimesSync(join(s.ctx, 'dir/exe'), when, when);
    await copyIntoRootfs(copyOpts(s, { sources: ['dir'], dest: '/d' }));
    assert.equal(readlinkSync(join(s.rootfs, 'd/abs-link')), '/etc/passwd');
    assert.equal(readlinkSync(join(s.rootfs, 'd/rel-link')), 'real');
    assert.equal(statSync(join(s.rootfs, 'd/real')).ino, statSync(join(s.rootfs, 'd/hard')).ino);
    const exe = statSync(join(s.rootfs, 'd/exe'));
    assert.equal(mode(exe.mode), '4755');
    assert.equal(exe.mtime.getTime(), when.getTime());
  });
});

describe('COPY sources', () => {
  it('wildcards work per component, [[] escapes a literal bracket, empty matches are fine', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'arr[0].txt': 'bracket', 'arr0.txt': 'plain', 'src/a/x.go': '1', 'src/b/y.go': '2', 'src/c/z.md': '3' });
    await copyIntoRootfs(copyOpts(s, { sources: ['arr[[]0].txt'], dest: '/b/' }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'b')), ['arr[0].txt']);
    await copyIntoRootfs(copyOpts(s, { sources: ['src/*/*.go', 'nothing*'], dest: '/g/' }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'g')).sort(), ['x.go', 'y.go']);
  });

  it('a missing non-wildcard source is an error', async (t) => {
    const s = sandbox(t);
    await assert.rejects(copyIntoRootfs(copyOpts(s, { sources: ['missing.txt'], dest: '/x' })), isCode('copy/source-not-found'));
  });

  it('a URL is not a COPY source', async (t) => {
    const s = sandbox(t);
    await assert.rejects(copyIntoRootfs(copyOpts(s, { sources: ['https://user:pw@example.com/x'], dest: '/x' })), (e: unknown) => {
      isCode('copy/url-source')(e);
      assert.doesNotMatch((e as Error).message, /pw/);
      return true;
    });
  });

  it('`..` and a leading `/` are cleaned away inside the context', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'x.txt': 'inside' });
    writeTree(s.base, { 'x.txt': 'outside' });
    await copyIntoRootfs(copyOpts(s, { sources: ['../x.txt', '/x.txt'], dest: '/o/' }));
    assert.equal(readFileSync(join(s.rootfs, 'o/x.txt'), 'utf8'), 'inside');
  });

  it('symlink sources are followed inside the context and refused when they leave it', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'real/f': 'data' });
    writeTree(s.base, { secret: 'host secret' });
    symlinkSync('real', join(s.ctx, 'inside-link'));
    symlinkSync(join(s.ctx, 'real/f'), join(s.ctx, 'abs-inside'));
    symlinkSync('../secret', join(s.ctx, 'rel-out'));
    symlinkSync(join(s.base, 'secret'), join(s.ctx, 'abs-out'));
    mkdirSync(join(s.ctx, 'd'));
    symlinkSync('../../secret', join(s.ctx, 'd/deep-out'));
    await copyIntoRootfs(copyOpts(s, { sources: ['inside-link', 'abs-inside'], dest: '/ok/' }));
    assert.equal(readFileSync(join(s.rootfs, 'ok/f'), 'utf8'), 'data');
    assert.equal(readFileSync(join(s.rootfs, 'ok/abs-inside'), 'utf8'), 'data');
    for (const src of ['rel-out', 'abs-out', 'd/deep-out', 'rel-out*', 'd/deep-out/..']) {
      const err = await copyIntoRootfs(copyOpts(s, { sources: [src], dest: '/bad/' })).then(
        () => undefined,
        (e: unknown) => e,
      );
      if (src === 'd/deep-out/..') {
        // Lexically cleaned to "d" before any lookup: copies the dir (its link stays a link).
        assert.equal(err, undefined);
        assert.equal(readlinkSync(join(s.rootfs, 'bad/deep-out')), '../../secret');
        continue;
      }
      isCode('context/escapes')(err);
      assert.match((err as Error).message, /outside of the build context/);
    }
    assert.ok(!existsSync(join(s.rootfs, 'bad/secret')));
  });

  it('context files become 0:0 unless --chown; --from sources keep their owners', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'f': 'x', 'd/g': 'y' });
    chownSync(join(s.ctx, 'f'), 1234, 5678);
    chownSync(join(s.ctx, 'd/g'), 1234, 5678);
    await copyIntoRootfs(copyOpts(s, { sources: ['f'], dest: '/ctx/' }));
    assert.deepEqual([statSync(join(s.rootfs, 'ctx/f')).uid, statSync(join(s.rootfs, 'ctx/f')).gid], [0, 0]);
    await copyIntoRootfs(copyOpts(s, { sources: ['f', 'd'], dest: '/from/', fromContext: false }));
    assert.equal(statSync(join(s.rootfs, 'from/f')).uid, 1234);
    assert.equal(statSync(join(s.rootfs, 'from/g')).gid, 5678);
    await copyIntoRootfs(copyOpts(s, { sources: ['d'], dest: '/own', chown: { uid: 7, gid: 8 } }));
    for (const p of ['own', 'own/g']) {
      const st = statSync(join(s.rootfs, p));
      assert.deepEqual([st.uid, st.gid], [7, 8], p);
    }
  });

  it('existing destination dirs are not chowned', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { f: 'x' });
    mkdirSync(join(s.rootfs, 'existing'));
    chownSync(join(s.rootfs, 'existing'), 3, 3);
    await copyIntoRootfs(copyOpts(s, { sources: ['f'], dest: '/existing/', chown: { uid: 7, gid: 8 } }));
    assert.equal(statSync(join(s.rootfs, 'existing')).uid, 3);
    assert.equal(statSync(join(s.rootfs, 'existing/f')).uid, 7);
  });
});

describe('COPY --chmod', () => {
  it('octal applies to files and dirs recursively', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'd/f': 'x', 'd/sub/g': 'y' });
    await copyIntoRootfs(copyOpts(s, { sources: ['d'], dest: '/o', chmod: '0640' }));
    for (const p of ['o', 'o/f', 'o/sub', 'o/sub/g']) assert.equal(mode(statSync(join(s.rootfs, p)).mode), '640', p);
  });

  it('symbolic: u=rwX,go=rX gives dirs and executables x, plain files none', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'd/plain': 'x', 'd/exe': 'y', 'd/sub/z': 'z' });
    chmodSync(join(s.ctx, 'd/plain'), 0o600);
    chmodSync(join(s.ctx, 'd/exe'), 0o700);
    chmodSync(join(s.ctx, 'd/sub'), 0o700);
    await copyIntoRootfs(copyOpts(s, { sources: ['d'], dest: '/o', chmod: 'u=rwX,go=rX' }));
    assert.equal(mode(statSync(join(s.rootfs, 'o/plain')).mode), '644');
    assert.equal(mode(statSync(join(s.rootfs, 'o/exe')).mode), '755');
    assert.equal(mode(statSync(join(s.rootfs, 'o/sub')).mode), '755');
    await copyIntoRootfs(copyOpts(s, { sources: ['d/plain'], dest: '/p', chmod: '+x' }));
    assert.equal(mode(statSync(join(s.rootfs, 'p')).mode), '711');
    await copyIntoRootfs(copyOpts(s, { sources: ['d/exe'], dest: '/q', chmod: 'go-rwx,g+s' }));
    assert.equal(mode(statSync(join(s.rootfs, 'q')).mode), '2700');
  });

  it('invalid values fail before anything is written', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { f: 'x' });
    for (const bad of ['8', '10000', 'u=rwz', 'q+x', '']) {
      await assert.rejects(copyIntoRootfs(copyOpts(s, { sources: ['f'], dest: '/nope/f', chmod: bad })), (e: unknown) => {
        isCode('copy/invalid-chmod')(e);
        assert.match((e as Error).message, /it should be octal string and between 0 and 07777/);
        return true;
      });
    }
    assert.ok(!existsSync(join(s.rootfs, 'nope')));
  });
});

describe('COPY --parents and --exclude', () => {
  it('--parents keeps the path from the context root, or from a /./ pivot, with ** patterns', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'x/y/a.txt': 'a', 'x/y/b.md': 'b', 'x/y/z/c.txt': 'c', 'top.txt': 't' });
    await copyIntoRootfs(copyOpts(s, { sources: ['x/y/a.txt', 'top.txt'], dest: '/full/', parents: true }));
    assert.ok(existsSync(join(s.rootfs, 'full/x/y/a.txt')));
    assert.ok(existsSync(join(s.rootfs, 'full/top.txt')));
    await copyIntoRootfs(copyOpts(s, { sources: ['./x/./y/*.txt'], dest: '/piv/', parents: true }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'piv')), ['y']);
    assert.deepEqual(readdirSync(join(s.rootfs, 'piv/y')), ['a.txt']);
    await copyIntoRootfs(copyOpts(s, { sources: ['x/**/*.txt'], dest: '/star/', parents: true }));
    assert.ok(existsSync(join(s.rootfs, 'star/x/y/a.txt')));
    assert.ok(existsSync(join(s.rootfs, 'star/x/y/z/c.txt')));
    assert.ok(!existsSync(join(s.rootfs, 'star/x/y/b.md')));
    await assert.rejects(copyIntoRootfs(copyOpts(s, { sources: ['x/nope.txt'], dest: '/e/', parents: true })), isCode('copy/source-not-found'));
  });

  it('--parents recreates intermediate dirs with their source modes', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'p/q/f': 'x' });
    chmodSync(join(s.ctx, 'p'), 0o711);
    await copyIntoRootfs(copyOpts(s, { sources: ['p/q/f'], dest: '/d/', parents: true }));
    assert.equal(mode(statSync(join(s.rootfs, 'd/p')).mode), '711');
  });

  it('--exclude filters paths relative to each source, and top-level wildcard matches', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'd/keep.go': 'k', 'd/drop.log': 'l', 'd/sub/x.log': 'x', 'd/sub/y.go': 'y', 'home.txt': '1', 'homer.go': '2' });
    await copyIntoRootfs(copyOpts(s, { sources: ['d'], dest: '/o', excludes: ['*.log', 'sub/*.log'] }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'o')).sort(), ['keep.go', 'sub']);
    assert.deepEqual(readdirSync(join(s.rootfs, 'o/sub')), ['y.go']);
    // The Dockerfile reference's example: COPY --exclude=*.txt hom* /mydir/
    await copyIntoRootfs(copyOpts(s, { sources: ['hom*'], dest: '/mydir/', excludes: ['*.txt'] }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'mydir')), ['homer.go']);
  });

  it('--exclude with an exception walks the excluded dir', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'd/vendor/a': 'a', 'd/vendor/keep': 'k', 'd/main': 'm' });
    await copyIntoRootfs(copyOpts(s, { sources: ['d'], dest: '/o', excludes: ['vendor', '!vendor/keep'] }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'o/vendor')), ['keep']);
  });
});

describe('.dockerignore applied to COPY', () => {
  it('ignored files are not copied, exceptions under excluded dirs are, named ignored sources are missing', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, {
      '.dockerignore': '*.secret\nnode_modules\n!node_modules/keep.js\nbuild\n',
      'app.js': 'a',
      'key.secret': 's',
      'node_modules/x.js': 'x',
      'node_modules/keep.js': 'k',
      'build/out': 'o',
    });
    const context = await openDirContext({ dir: s.ctx });
    const sources = await context.resolveSources(['.'], { allowEmptyWildcard: true, parents: false, excludes: [] });
    await copyIntoRootfs(copyOpts(s, { sources, dest: '/app', ignore: context.ignore }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'app')).sort(), ['.dockerignore', 'app.js', 'node_modules']);
    assert.deepEqual(readdirSync(join(s.rootfs, 'app/node_modules')), ['keep.js']);
    await assert.rejects(
      context.resolveSources(['key.secret'], { allowEmptyWildcard: true, parents: false, excludes: [] }),
      (e: unknown) => isCode('copy/source-not-found')(e) && /dockerignore/.test((e as Error).message),
    );
    assert.deepEqual(await context.resolveSources(['*.secret'], { allowEmptyWildcard: true, parents: false, excludes: [] }), []);
    // An excluded dir with an exception inside still exists (holding only the exception).
    const nm = await context.resolveSources(['node_modules'], { allowEmptyWildcard: true, parents: false, excludes: [] });
    assert.equal(nm.length, 1);
  });
});

describe('writes stay inside the rootfs', () => {
  it('a destination through an absolute symlink means the rootfs path, never the host', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'f.txt': 'payload', 'dir/g.txt': 'g' });
    mkdirSync(join(s.base, 'hostdir'));
    mkdirSync(join(s.rootfs, 'etc'));
    // Both point at host paths if followed naively.
    symlinkSync('/etc', join(s.rootfs, 'etc-link'));
    symlinkSync(join(s.base, 'hostdir'), join(s.rootfs, 'host-link'));
    symlinkSync('../../../../../../hostdir', join(s.rootfs, 'dotdot-link'));
    await copyIntoRootfs(copyOpts(s, { sources: ['f.txt'], dest: '/etc-link/' }));
    assert.equal(readFileSync(join(s.rootfs, 'etc/f.txt'), 'utf8'), 'payload');
    assert.ok(!existsSync('/etc/f.txt'));
    await copyIntoRootfs(copyOpts(s, { sources: ['f.txt', 'dir'], dest: '/host-link/' }));
    await copyIntoRootfs(copyOpts(s, { sources: ['f.txt'], dest: '/dotdot-link/x' }));
    await copyIntoRootfs(copyOpts(s, { sources: ['f.txt'], dest: '/../../../escape.txt' }));
    assert.deepEqual(readdirSync(join(s.base, 'hostdir')), []);
    assert.ok(existsSync(join(s.rootfs, s.base, 'hostdir/f.txt')), 'resolved under the rootfs');
    assert.ok(existsSync(join(s.rootfs, 'hostdir/x')));
    assert.ok(existsSync(join(s.rootfs, 'escape.txt')));
    assert.ok(!existsSync(join(s.base, 'escape.txt')));
  });

  it('a symlinked directory inside the rootfs is merged into inside the rootfs', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'tree/lib/new.so': 'so' });
    mkdirSync(join(s.rootfs, 'usr/lib'), { recursive: true });
    mkdirSync(join(s.rootfs, 'app'));
    symlinkSync('/usr/lib', join(s.rootfs, 'app/lib'));
    await copyIntoRootfs(copyOpts(s, { sources: ['tree'], dest: '/app/' }));
    assert.ok(lstatSync(join(s.rootfs, 'app/lib')).isSymbolicLink());
    assert.equal(readFileSync(join(s.rootfs, 'usr/lib/new.so'), 'utf8'), 'so');
    assert.ok(!existsSync('/usr/lib/new.so'));
  });

  it('an aborted copy writes nothing', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'd/a': 'a' });
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(copyIntoRootfs(copyOpts(s, { sources: ['d'], dest: '/o', signal: ac.signal })));
    assert.deepEqual(readdirSync(s.rootfs), []);
  });

  it('no temp files are left behind, and a replaced file is replaced whole', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { 'd/f': 'new content' });
    writeTree(s.rootfs, { 'o/f': 'old content that is longer' });
    await copyIntoRootfs(copyOpts(s, { sources: ['d'], dest: '/o' }));
    assert.deepEqual(readdirSync(join(s.rootfs, 'o')), ['f']);
    assert.equal(readFileSync(join(s.rootfs, 'o/f'), 'utf8'), 'new content');
  });
});

describe('extended attributes (best effort, via python3)', () => {
  const py = (code: string, ...args: string[]) => execFileSync('python3', ['-c', code, ...args], { encoding: 'utf8' });
  const hasPython = (() => {
    try {
      py('pass');
      return true;
    } catch {
      return false;
    }
  })();

  it('copies user.* and security.capability (set after chown, which would clear it)', async (t) => {
    // python3 is how the engine reads and writes xattrs; scripts/install-deps.sh installs it.
    assert.ok(hasPython, 'python3 is missing: install the Debian package python3 (scripts/install-deps.sh does)');
    const s = sandbox(t);
    writeTree(s.ctx, { 'd/ping': 'elf' });
    const file = join(s.ctx, 'd/ping');
    // cap_net_raw+ep, as `setcap cap_net_raw+ep` writes it (VFS_CAP_REVISION_2).
    py(
      "import os,sys; os.setxattr(sys.argv[1],'user.origin',b'ctx'); os.setxattr(sys.argv[1],'security.capability',bytes.fromhex('0100000200200000000000000000000000000000'))",
      file,
    );
    await copyIntoRootfs(copyOpts(s, { sources: ['d'], dest: '/bin', fromContext: false, chown: { uid: 1, gid: 1 } }));
    const got = py(
      "import os,sys; p=sys.argv[1]; print(os.getxattr(p,'user.origin').decode(), os.getxattr(p,'security.capability').hex())",
      join(s.rootfs, 'bin/ping'),
    ).trim();
    assert.equal(got, 'ctx 0100000200200000000000000000000000000000');
  });
});

describe('heredoc sources', () => {
  it('are files named after the heredoc, 0644 or --chmod, owned 0:0 or --chown', async (t) => {
    const s = sandbox(t);
    await copyIntoRootfs(copyOpts(s, { sources: [{ kind: 'inline', name: 'EOF', content: 'hi\n' }], dest: '/dir/' }));
    const st = statSync(join(s.rootfs, 'dir/EOF'));
    assert.equal(mode(st.mode), '644');
    assert.equal(readFileSync(join(s.rootfs, 'dir/EOF'), 'utf8'), 'hi\n');
    await copyIntoRootfs(
      copyOpts(s, { sources: [{ kind: 'inline', name: 'run', content: '#!/bin/sh\n' }], dest: '/bin/run.sh', chmod: '755', chown: { uid: 5, gid: 6 } }),
    );
    const st2 = statSync(join(s.rootfs, 'bin/run.sh'));
    assert.equal(mode(st2.mode), '755');
    assert.deepEqual([st2.uid, st2.gid], [5, 6]);
  });
});

describe('BuildContext', () => {
  it('fileDigests follow content and mode, not mtime, and skip ignored files', async (t) => {
    const s = sandbox(t);
    writeTree(s.ctx, { '.dockerignore': 'd/ignored\n', 'd/a': 'A', 'd/ignored': '1', f: 'F' });
    const digest = async (p: string) => (await (await openDirContext({ dir: s.ctx })).fileDigests([p])).get(p)!;
    const d0 = await digest('d');
    const f0 = await digest('f');
    assert.match(d0, /^sha256:[0-9a-f]{64}$/);
    writeFileSync(join(s.ctx, 'd/ignored'), '2');
    utimesSync(join(s.ctx, 'd/a'), new Date(0), new Date(0));
    assert.equal(await digest('d'), d0);
    writeFileSync(join(s.ctx, 'd/a'), 'B');
    assert.notEqual(await digest('d'), d0);
    chmodSync(join(s.ctx, 'f'), 0o755);
    assert.notEqual(await digest('f'), f0);
  });

  it('openTarContext extracts a tar.gz into a temp dir that close() removes', async (t) => {
    const s = sandbox(t);
    writeTree(join(s.base, 'src'), { 'Dockerfile': 'FROM scratch\n', '.dockerignore': 'junk\n', 'app/x': 'x', junk: 'j' });
    const tgz = join(s.base, 'ctx.tar.gz');
    execFileSync('tar', ['-czf', tgz, '-C', join(s.base, 'src'), '.']);
    const { openTarContext } = await import('../../src/engine/context/context.js');
    const context = await openTarContext({ tarPath: tgz, tmpDir: s.base, signal: AbortSignal.timeout(30_000) });
    assert.equal(readFileSync(join(context.dir, 'app/x'), 'utf8'), 'x');
    assert.equal(context.ignore.matches('junk'), true);
    const r = await context.resolveSources(['app/x'], { allowEmptyWildcard: true, parents: false, excludes: [] });
    assert.equal(r[0]!.relPath, 'app/x');
    await context.close();
    assert.ok(!existsSync(context.dir));
  });
});
