/**
 * The RUN sandbox against real bubblewrap and a hand-made busybox rootfs (no mocks).
 */
import assert from 'node:assert/strict';
import { chown, lchown, lstat, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { MountSpec } from '../../src/dockerfile/types.js';
import { detectIsolation } from '../../src/engine/sandbox/detect.js';
import { mapRunMounts } from '../../src/engine/sandbox/run-mounts.js';
import { createMatcher } from '../../src/engine/context/dockerignore.js';
import { runCommandArgv } from '../../src/engine/sandbox/run-command.js';
import { runStep } from '../../src/engine/sandbox/run-step.js';
import type { RunStepOptions, SandboxUser } from '../../src/engine/sandbox/types.js';
import { isAbortError, StowageError } from '../../src/util/errors.js';
import { makeTinyRootfs, type TinyRootfs } from './sandbox-helpers.js';

const ROOT: SandboxUser = { uid: 0, gid: 0, supplementaryGids: [] };
const APP: SandboxUser = { uid: 1000, gid: 1000, supplementaryGids: [50] };

function opts(rootfs: string, script: string, extra: Partial<RunStepOptions> = {}): RunStepOptions {
  return {
    rootfs,
    argv: ['/bin/sh', '-c', script],
    env: ['PATH=/bin'],
    cwd: '/',
    user: ROOT,
    network: 'default',
    mounts: [],
    signal: AbortSignal.timeout(60_000),
    ...extra,
  };
}

async function run(rootfs: string, script: string, extra: Partial<RunStepOptions> = {}): Promise<{ exitCode: number; out: string; tail: string[] }> {
  let out = '';
  const res = await runStep({ ...opts(rootfs, script, extra), onOutput: (c) => (out += c.toString()) });
  return { exitCode: res.exitCode, out, tail: res.outputTail };
}

/** Every path in the rootfs, for "nothing was left behind" assertions. */
async function listTree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = `${prefix}/${e.name}`;
    out.push(rel);
    if (e.isDirectory()) out.push(...(await listTree(path.join(dir, e.name), rel)));
  }
  return out.sort();
}

describe('runStep with bubblewrap', () => {
  let fs: TinyRootfs;
  let pristine: string[];
  before(async () => {
    fs = await makeTinyRootfs();
    await chown(path.join(fs.dir, 'home/app'), 1000, 1000);
    pristine = await listTree(fs.dir);
  });
  after(async () => fs.cleanup());

  it('runs a step whose file appears in the rootfs directory, and leaves no mount stubs', async () => {
    const r = await run(fs.dir, 'echo hello > /made-by-step; echo done');
    assert.equal(r.exitCode, 0);
    assert.match(r.out, /done/);
    assert.equal(await readFile(path.join(fs.dir, 'made-by-step'), 'utf8'), 'hello\n');
    await rm(path.join(fs.dir, 'made-by-step'));
    // /proc, /dev, /etc/hosts, /etc/resolv.conf placeholders were created for the run and removed.
    assert.deepEqual(await listTree(fs.dir), pristine);
  });

  it('propagates the exit code and keeps the output tail', async () => {
    const r = await run(fs.dir, 'for i in 1 2 3 4 5; do echo line$i; done; echo oops >&2; exit 42', { tailLines: 3 });
    assert.equal(r.exitCode, 42);
    assert.deepEqual(r.tail, ['line4', 'line5', 'oops']);
  });

  it('applies env, cwd, hostname and the user (files are owned by the step’s uid)', async () => {
    const r = await run(fs.dir, 'echo "foo=$FOO"; pwd; hostname; id -u; id -g; id -G; touch owned', {
      env: ['PATH=/bin', 'FOO=bar baz'],
      cwd: '/home/app',
      user: APP,
    });
    assert.equal(r.exitCode, 0, r.out);
    const lines = r.out.trim().split('\n');
    assert.deepEqual(lines, ['foo=bar baz', '/home/app', 'buildkitsandbox', '1000', '1000', '1000 50']);
    const st = await stat(path.join(fs.dir, 'home/app/owned'));
    assert.equal(st.uid, 1000);
    assert.equal(st.gid, 1000);
    await rm(path.join(fs.dir, 'home/app/owned'));
  });

  it('a non-root step has no capabilities and cannot write root-owned directories', async () => {
    const r = await run(fs.dir, 'grep CapEff /proc/self/status; touch /etc/nope || echo denied', { user: APP });
    assert.match(r.out, /CapEff:\s+0+\n/);
    assert.match(r.out, /denied/);
    await assert.rejects(lstat(path.join(fs.dir, 'etc/nope')));
  });

  it('a root step has exactly its own gid and groups, never stowage’s (with or without setpriv)', async () => {
    const ids = 'grep -E "^(Gid|Groups):" /proc/self/status';
    assert.ok(process.getgroups!().length > 0, 'the test process has groups a leak would show');
    for (const [user, expected] of [
      [{ uid: 0, gid: 0, supplementaryGids: [] }, /^Gid:\s+0\s+0\s+0\s+0\nGroups:\s*\n$/],
      [{ uid: 0, gid: 7, supplementaryGids: [] }, /^Gid:\s+7\s+7\s+7\s+7\nGroups:\s*\n$/],
      [{ uid: 0, gid: 7, supplementaryGids: [5, 6] }, /^Gid:\s+7\s+7\s+7\s+7\nGroups:\s+5 6\s*\n$/],
    ] as const) {
      const r = await run(fs.dir, ids, { user: { ...user, supplementaryGids: [...user.supplementaryGids] } });
      assert.equal(r.exitCode, 0, r.out);
      assert.match(r.out, expected, JSON.stringify(user));
    }
  });

  it('root steps get Docker’s default capabilities, not all of them', async () => {
    const r = await run(fs.dir, 'grep CapEff /proc/self/status');
    const hex = /CapEff:\s+([0-9a-f]+)/.exec(r.out)?.[1];
    assert.ok(hex, r.out);
    const caps = BigInt(`0x${hex}`);
    const CAP_CHOWN = 0n;
    const CAP_SYS_ADMIN = 21n;
    assert.equal((caps >> CAP_CHOWN) & 1n, 1n);
    assert.equal((caps >> CAP_SYS_ADMIN) & 1n, 0n);
  });

  it('creates a missing WORKDIR', async () => {
    const r = await run(fs.dir, 'pwd', { cwd: '/srv/made/here' });
    assert.equal(r.out.trim(), '/srv/made/here');
    assert.ok((await stat(path.join(fs.dir, 'srv/made/here'))).isDirectory());
    await rm(path.join(fs.dir, 'srv'), { recursive: true });
  });

  it('shows nothing of the host filesystem', async () => {
    const marker = await mkdtemp(path.join(os.tmpdir(), 'stowage-host-marker-'));
    try {
      await writeFile(path.join(marker, 'secret'), 'host data');
      const r = await run(fs.dir, `test -e ${marker} && echo marker-visible; test -e /work && echo work-visible; test -e /usr && echo usr-visible; ls /`);
      assert.doesNotMatch(r.out, /visible/);
      const inside = r.out.trim().split(/\s+/).sort();
      const expected = (await readdir(fs.dir)).concat(['dev', 'proc']).filter((v, i, a) => a.indexOf(v) === i).sort();
      assert.deepEqual(inside, expected);
    } finally {
      await rm(marker, { recursive: true, force: true });
    }
  });

  it('network=none leaves only the loopback interface', async () => {
    const none = await run(fs.dir, 'cat /proc/net/dev', { network: 'none' });
    const ifaces = none.out.split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter((s) => s !== '');
    assert.deepEqual(ifaces, ['lo']);
    const host = await run(fs.dir, 'cat /proc/net/dev', { network: 'host' });
    assert.ok(host.out.split('\n').slice(2).filter((l) => l.trim() !== '').length >= 1);
  });

  for (const user of [ROOT, APP]) {
    it(`abort kills the step and everything it started (uid ${user.uid})`, async () => {
      const ac = new AbortController();
      let seen = '';
      // A unique duration identifies the step's process in the host's process list.
      const marker = `300.${process.pid}${user.uid}${Date.now() % 100000}`;
      const p = runStep({
        ...opts(fs.dir, `sleep ${marker} & echo started; wait`),
        user,
        signal: ac.signal,
        onOutput: (c) => {
          seen += c.toString();
          if (seen.includes('started')) ac.abort();
        },
      });
      await assert.rejects(p, (e: unknown) => isAbortError(e));
      // No process of the step survives (runStep returns only after the whole group is gone).
      assert.deepEqual(await processesWith(marker), []);
    });
  }

  it('a secret is readable inside and absent from the rootfs afterwards', async () => {
    const mounts = await mapRunMounts(
      [spec({ type: 'secret', id: 'token', readOnly: true }), spec({ type: 'secret', id: 'token', target: '/etc/app/token', uid: 1000, mode: 0o400, readOnly: true })],
      mountCtx(fs.dir, { secrets: async (id) => (id === 'token' ? Buffer.from('s3cr3t') : undefined) }),
    );
    try {
      const r = await run(fs.dir, 'cat /run/secrets/token; echo; cat /etc/app/token; echo; stat -c "%a %u" /etc/app/token', { mounts: mounts.mounts, user: APP });
      assert.equal(r.exitCode, 0, r.out);
      const asRoot = await run(fs.dir, 'cat /run/secrets/token', { mounts: mounts.mounts });
      assert.equal(asRoot.out, 's3cr3t');
      // The default secret is root-owned 0400, unreadable by uid 1000 (as in docker); the one with uid=1000 is readable.
      assert.match(r.out, /Permission denied/);
      assert.match(r.out, /\ns3cr3t\n400 1000\n$/);
    } finally {
      await mounts.release();
    }
    assert.deepEqual(await listTree(fs.dir), pristine);
    const rootRun = await run(fs.dir, 'ls /run 2>&1; ls /etc');
    assert.doesNotMatch(rootRun.out, /token|secrets/);
  });

  it('a required secret that is missing fails before running; an optional one is skipped', async () => {
    await assert.rejects(
      mapRunMounts([spec({ type: 'secret', id: 'npmrc', required: true, readOnly: true })], mountCtx(fs.dir)),
      (e: unknown) => e instanceof StowageError && /npmrc/.test(e.message),
    );
    const m = await mapRunMounts([spec({ type: 'secret', id: 'npmrc', readOnly: true })], mountCtx(fs.dir));
    assert.deepEqual(m.mounts, []);
  });

  it('a cache mount persists between runs and never lands in the rootfs', async () => {
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'stowage-cache-'));
    try {
      for (const expected of ['1', '2']) {
        const m = await mapRunMounts([spec({ type: 'cache', target: '/var/cache/thing', readOnly: false })], mountCtx(fs.dir, { cacheDir }));
        try {
          const r = await run(fs.dir, 'f=/var/cache/thing/n; n=$(cat $f 2>/dev/null || echo 0); echo $((n+1)) > $f; cat $f', { mounts: m.mounts });
          assert.equal(r.out.trim(), expected);
        } finally {
          await m.release();
        }
      }
      assert.deepEqual(await listTree(fs.dir), pristine);
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('sharing=locked serialises two steps on one cache', async () => {
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'stowage-cache-'));
    try {
      const ctx = mountCtx(fs.dir, { cacheDir, lockPollMs: 20 });
      const first = await mapRunMounts([spec({ type: 'cache', id: 'x', target: '/c', sharing: 'locked', readOnly: false })], ctx);
      let secondGot = false;
      const second = mapRunMounts([spec({ type: 'cache', id: 'x', target: '/c', sharing: 'locked', readOnly: false })], ctx).then((m) => {
        secondGot = true;
        return m;
      });
      await run(fs.dir, 'echo a > /c/who', { mounts: first.mounts });
      assert.equal(secondGot, false, 'the second step waited while the first held the lock');
      await first.release();
      const m2 = await second;
      const r = await run(fs.dir, 'cat /c/who', { mounts: m2.mounts });
      await m2.release();
      assert.equal(r.out.trim(), 'a');
      // private while locked: a fresh empty cache for the step
      const holder = await mapRunMounts([spec({ type: 'cache', id: 'x', target: '/c', sharing: 'locked', readOnly: false })], ctx);
      const priv = await mapRunMounts([spec({ type: 'cache', id: 'x', target: '/c', sharing: 'private', readOnly: false })], ctx);
      const r2 = await run(fs.dir, 'ls /c | wc -l', { mounts: priv.mounts });
      await priv.release();
      await holder.release();
      assert.equal(r2.out.trim(), '0');
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('waiting for a locked cache stops when the build is aborted', async () => {
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'stowage-cache-'));
    try {
      const holder = await mapRunMounts([spec({ type: 'cache', id: 'y', target: '/c', sharing: 'locked', readOnly: false })], mountCtx(fs.dir, { cacheDir }));
      const ac = new AbortController();
      const waiting = mapRunMounts([spec({ type: 'cache', id: 'y', target: '/c', sharing: 'locked', readOnly: false })], mountCtx(fs.dir, { cacheDir, signal: ac.signal, lockPollMs: 10 }));
      ac.abort();
      await assert.rejects(waiting, (e: unknown) => isAbortError(e));
      await holder.release();
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('a tmpfs mount leaves nothing behind', async () => {
    const r = await run(fs.dir, 'mkdir -p /scratch/deep && echo x > /scratch/deep/file && cat /scratch/deep/file && grep " /scratch " /proc/self/mountinfo', {
      mounts: [{ kind: 'tmpfs', target: '/scratch', sizeBytes: 1 << 20 }],
    });
    assert.match(r.out, /^x\n.* \/scratch .* - tmpfs .*size=1024k/);
    assert.deepEqual(await listTree(fs.dir), pristine);
  });

  it('a read-only bind of the context cannot be written; rw binds discard writes', async () => {
    const ctxDir = await mkdtemp(path.join(os.tmpdir(), 'stowage-ctx-'));
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'stowage-cache-'));
    try {
      await writeFile(path.join(ctxDir, 'input.txt'), 'from context\n');
      const m = await mapRunMounts(
        [spec({ type: 'bind', target: '/src', readOnly: true }), spec({ type: 'bind', target: '/rw', readOnly: false })],
        mountCtx(fs.dir, { contextDir: ctxDir, cacheDir }),
      );
      try {
        const r = await run(fs.dir, 'cat /src/input.txt; echo no > /src/input.txt || echo ro-refused; echo changed > /rw/input.txt; cat /rw/input.txt', { mounts: m.mounts });
        assert.match(r.out, /from context\n[\s\S]*ro-refused[\s\S]*changed/);
      } finally {
        await m.release();
      }
      assert.equal(await readFile(path.join(ctxDir, 'input.txt'), 'utf8'), 'from context\n');
      assert.deepEqual(await listTree(fs.dir), pristine);
    } finally {
      await rm(ctxDir, { recursive: true, force: true });
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it('runs a heredoc with #! as a script file at /dev/pipes (A3 case 1)', async () => {
    const plan = runCommandArgv({ command: { form: 'shell', command: '<<EOF' }, heredocs: [{ name: 'EOF', body: '#!/bin/sh\necho "script $0"\nid -u\n', expand: true, chomp: false, fd: 0 }] }, ['/bin/sh', '-c']);
    for (const user of [ROOT, APP]) {
      const r = await run(fs.dir, '', { argv: plan.argv, mounts: plan.mounts, user });
      assert.equal(r.exitCode, 0, r.out);
      assert.equal(r.out, `script /dev/pipes/EOF\n${user.uid}\n`);
    }
    assert.deepEqual(await listTree(fs.dir), pristine);
  });

  it('a missing bwrap binary is a clear error, never a run on the host', async () => {
    await assert.rejects(
      runStep({ ...opts(fs.dir, 'touch /on-host'), tools: { bwrap: '/nonexistent/bwrap', setpriv: '/nonexistent/setpriv' } }),
      (e: unknown) => e instanceof StowageError && e.code === 'engine/sandbox-unavailable' && /bubblewrap/.test(e.hint ?? ''),
    );
  });

  it('a command missing from the image exits 127 with bubblewrap’s message', async () => {
    const r = await run(fs.dir, '', { argv: ['/usr/bin/not-there', 'x'] });
    assert.equal(r.exitCode, 127);
    assert.match(r.tail.join('\n'), /not-there/);
  });

  it('a mount target that is a directory cannot take a file', async () => {
    await assert.rejects(
      runStep({ ...opts(fs.dir, 'true'), mounts: [{ kind: 'bind', source: path.join(fs.dir, 'bin/busybox'), target: '/bin', readonly: true }] }),
      (e: unknown) => e instanceof StowageError && e.code === 'engine/mount-target-is-directory',
    );
  });

  it('a sandbox setup failure is reported as such, not as the command’s exit code', async () => {
    await assert.rejects(
      // bubblewrap cannot create a mount point inside /proc: it fails before the command starts.
      runStep({ ...opts(fs.dir, 'exit 1'), mounts: [{ kind: 'tmpfs', target: '/proc/stowage-nope' }] }),
      (e: unknown) => e instanceof StowageError && e.code === 'engine/sandbox-failed' && /bwrap:/.test(e.message),
    );
  });
});

describe('runStep with chroot isolation', () => {
  let fs: TinyRootfs;
  before(async () => {
    fs = await makeTinyRootfs();
    await chown(path.join(fs.dir, 'home/app'), 1000, 1000);
  });
  after(async () => fs.cleanup());

  it('runs a step chrooted, as the user, in the cwd, with env; emulated file mounts are removed', async () => {
    const before = await listTree(fs.dir);
    const r = await run(fs.dir, 'id -u; id -G; pwd; echo $GREETING; cat /run/secrets/s; touch mine', {
      isolation: 'chroot',
      user: APP,
      cwd: '/home/app',
      env: ['PATH=/bin', 'GREETING=hi'],
      mounts: [{ kind: 'file', content: 'pw', target: '/run/secrets/s', mode: 0o400, uid: 1000, gid: 0 }],
    });
    assert.equal(r.exitCode, 0, r.out);
    assert.deepEqual(r.out.trim().split('\n'), ['1000', '1000 50', '/home/app', 'hi', 'pw']);
    assert.equal((await stat(path.join(fs.dir, 'home/app/mine'))).uid, 1000);
    await rm(path.join(fs.dir, 'home/app/mine'));
    assert.deepEqual(await listTree(fs.dir), before);
  });

  it('refuses bind mounts it cannot provide', async () => {
    await assert.rejects(
      runStep({ ...opts(fs.dir, 'true'), isolation: 'chroot', mounts: [{ kind: 'bind', source: '/tmp', target: '/x', readonly: true }] }),
      (e: unknown) => e instanceof StowageError && e.code === 'engine/mount-unsupported',
    );
  });
});

describe('runStep when stowage itself is not root (user namespaces)', () => {
  it('runs the step as the invoking user with bubblewrap --unshare-user', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to create the unprivileged invoker');
    const fs = await makeTinyRootfs();
    try {
      const tree = path.dirname(fs.dir);
      await chownTree(tree, 1000, 1000);
      const child = path.join(tree, 'child.mts');
      const runStepModule = new URL('../../src/engine/sandbox/run-step.ts', import.meta.url).pathname;
      await writeFile(
        child,
        `import { runStep } from ${JSON.stringify(runStepModule)};\n` +
          `const res = await runStep({ rootfs: process.argv[2], argv: ['/bin/sh', '-c', 'id -u; touch /home/app/rootless; cat /run/secrets/x'], env: [], cwd: '/home/app',\n` +
          `  user: { uid: 1000, gid: 1000, supplementaryGids: [] }, network: 'none', mounts: [{ kind: 'file', content: 'tok', target: '/run/secrets/x', mode: 0o400, uid: 1000, gid: 1000 }],\n` +
          `  signal: AbortSignal.timeout(30000) });\n` +
          `process.stdout.write(JSON.stringify(res));\n`,
      );
      await chown(child, 1000, 1000);
      const out = await new Promise<string>((resolve, reject) =>
        execFile(
          'setpriv',
          ['--reuid=1000', '--regid=1000', '--clear-groups', '--', process.execPath, '--import', 'tsx', child, fs.dir],
          { cwd: new URL('../..', import.meta.url).pathname, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tree }, timeout: 60_000 },
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
        ),
      );
      assert.deepEqual(JSON.parse(out), { exitCode: 0, outputTail: ['1000', 'tok'] });
      assert.equal((await stat(path.join(fs.dir, 'home/app/rootless'))).uid, 1000);
      await assert.rejects(lstat(path.join(fs.dir, 'run')), 'the secret mount point was removed');
    } finally {
      await fs.cleanup();
    }
  });
});

/** Host pids whose command line contains `needle`. */
async function processesWith(needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(needle)) found.push(pid);
  }
  return found;
}

async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await chown(dir, uid, gid);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await chownTree(p, uid, gid);
    else await lchown(p, uid, gid);
  }
}

describe('detectIsolation', () => {
  it('picks bubblewrap on this machine (root, bwrap installed)', async () => {
    const choice = await detectIsolation(AbortSignal.timeout(30_000));
    assert.equal(choice.isolation, 'bwrap');
  });
  it('falls back to chroot when bwrap is missing, and says why', async () => {
    const choice = await detectIsolation(AbortSignal.timeout(30_000), { bwrap: '/nonexistent/bwrap', setpriv: 'setpriv', nsenter: 'nsenter', env: 'env', chroot: '/usr/sbin/chroot' });
    assert.equal(choice.isolation, 'chroot');
    assert.match(choice.reason, /bubblewrap/);
  });
  it('fails naming the options left when neither works', async () => {
    await assert.rejects(
      detectIsolation(AbortSignal.timeout(30_000), { bwrap: '/nonexistent/bwrap', setpriv: 'setpriv', nsenter: 'nsenter', env: 'env', chroot: '/nonexistent/chroot' }),
      (e: unknown) => e instanceof StowageError && e.code === 'engine/no-isolation' && /--isolation=none/.test(e.hint ?? ''),
    );
  });
});

function spec(m: Omit<MountSpec, 'raw'>): MountSpec {
  return { raw: Object.entries(m).map(([k, v]) => `${k}=${String(v)}`).join(','), ...m };
}

function mountCtx(rootfs: string, over: Partial<Parameters<typeof mapRunMounts>[1]> = {}): Parameters<typeof mapRunMounts>[1] {
  return {
    rootfs,
    workdir: '/',
    contextDir: rootfs,
    contextIgnore: createMatcher([]),
    stageRootfs: async () => rootfs,
    cacheDir: path.join(os.tmpdir(), 'stowage-unused-cache'),
    secrets: async () => undefined,
    signal: AbortSignal.timeout(60_000),
    ...over,
  };
}
