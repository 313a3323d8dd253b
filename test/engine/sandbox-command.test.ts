/**
 * RUN argv per DOCKERFILE.md A3 / A4 / A14 (pure), and the bubblewrap argument plans (pure).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HeredocSpec } from '../../src/dockerfile/types.js';
import { isWholeCommandHeredoc, runCommandArgv } from '../../src/engine/sandbox/run-command.js';
import { bwrapArgs, envPairs, groupFlags, stageForSetuidBwrap, type BwrapPlan } from '../../src/engine/sandbox/run-step.js';
import { cleanContainerPath } from '../../src/engine/sandbox/in-root.js';
import { explainBwrapFailure } from '../../src/engine/sandbox/host-tools.js';
import { OutputTail } from '../../src/engine/sandbox/process.js';

const doc = (name: string, body: string, chomp = false): HeredocSpec => ({ name, body, expand: true, chomp, fd: 0 });

describe('runCommandArgv', () => {
  it('shell form runs under the stage SHELL, exec form as is', () => {
    assert.deepEqual(runCommandArgv({ command: { form: 'shell', command: 'echo hi' } }, ['/bin/bash', '-eo', 'pipefail', '-c']).argv, ['/bin/bash', '-eo', 'pipefail', '-c', 'echo hi']);
    assert.deepEqual(runCommandArgv({ command: { form: 'shell', command: 'echo hi' } }, []).argv, ['/bin/sh', '-c', 'echo hi']);
    assert.deepEqual(runCommandArgv({ command: { form: 'exec', argv: ['ls', '-l'] } }, ['/bin/bash', '-c']).argv, ['ls', '-l']);
  });

  it('case 1: a single whole-command heredoc with #! becomes /dev/pipes/NAME, 0755, run via SHELL', () => {
    const plan = runCommandArgv({ command: { form: 'shell', command: '<<EOF' }, heredocs: [doc('EOF', '#!/usr/bin/env python3\nprint(1)\n')] }, ['/bin/sh', '-c']);
    assert.deepEqual(plan.argv, ['/bin/sh', '-c', '/dev/pipes/EOF']);
    assert.deepEqual(plan.mounts, [{ kind: 'file', content: '#!/usr/bin/env python3\nprint(1)\n', target: '/dev/pipes/EOF', mode: 0o755, uid: 0, gid: 0 }]);
  });

  it('case 2: a single whole-command heredoc without #! is the shell command (chomped body from the parser)', () => {
    const plan = runCommandArgv({ command: { form: 'shell', command: '<<-EOT' }, heredocs: [doc('EOT', 'echo a\necho b\n', true)] }, ['/bin/sh', '-c']);
    assert.deepEqual(plan.argv, ['/bin/sh', '-c', 'echo a\necho b\n']);
    assert.deepEqual(plan.mounts, []);
    // quoted names are still the whole command
    assert.deepEqual(runCommandArgv({ command: { form: 'shell', command: '<<"EOF"' }, heredocs: [doc('EOF', 'echo $HOME\n')] }).argv, ['/bin/sh', '-c', 'echo $HOME\n']);
  });

  it('case 3: anything else hands the line plus bodies and terminators to the shell', () => {
    const plan = runCommandArgv(
      { command: { form: 'shell', command: '<<A cat >a && <<B cat >b' }, heredocs: [doc('A', 'one\n'), doc('B', 'two\n')] },
      ['/bin/sh', '-c'],
    );
    assert.deepEqual(plan.argv, ['/bin/sh', '-c', '<<A cat >a && <<B cat >b\none\nA\ntwo\nB']);
    // `<<EOF bash` is two words: not the whole command
    const p2 = runCommandArgv({ command: { form: 'shell', command: '<<EOF bash' }, heredocs: [doc('EOF', '#!/bin/sh\necho\n')] });
    assert.deepEqual(p2.argv, ['/bin/sh', '-c', '<<EOF bash\n#!/bin/sh\necho\nEOF']);
    assert.deepEqual(p2.mounts, []);
  });

  it('recognises whole-command heredoc words the way BuildKit does', () => {
    assert.equal(isWholeCommandHeredoc('<<EOF', 'EOF'), true);
    assert.equal(isWholeCommandHeredoc('3<<-EOF', 'EOF'), true);
    assert.equal(isWholeCommandHeredoc("<<'EOF'", 'EOF'), true);
    assert.equal(isWholeCommandHeredoc('<<EOF python3', 'EOF'), false);
    assert.equal(isWholeCommandHeredoc('cat <<EOF', 'EOF'), false);
    assert.equal(isWholeCommandHeredoc('<<', 'EOF'), false);
  });

  it('a heredoc name with a slash cannot escape /dev/pipes', () => {
    const plan = runCommandArgv({ command: { form: 'shell', command: '<<a/../../b' }, heredocs: [doc('a/../../b', '#!/bin/sh\n')] });
    assert.equal(plan.mounts[0]?.target, '/dev/pipes/a_.._.._b');
  });
});

describe('bubblewrap argument plans', () => {
  const plan: BwrapPlan = {
    root: '/var/lib/stowage/r1',
    mounts: [
      { kind: 'bind', source: '/dev/shm/x/hosts', target: '/etc/hosts', readonly: true },
      { kind: 'tmpfs', target: '/tmp/t', sizeBytes: 1024 },
      { kind: 'bind', source: '/cache/c1', target: '/root/.cache', readonly: false },
    ],
    cwd: '/app',
    env: ['A=1', 'NOEQUALS', 'A=2', 'B=x=y'],
    hostname: 'buildkitsandbox',
    network: 'none',
    argv: ['/bin/sh', '-c', 'true'],
    statusFd: 3,
  };

  it('unshares pid/ipc/uts (+net for none), binds the rootfs as /, sets env only for the command', () => {
    const a = bwrapArgs(plan);
    for (const f of ['--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net', '--die-with-parent', '--clearenv']) assert.ok(a.includes(f), f);
    assert.deepEqual(a.slice(a.indexOf('--bind'), a.indexOf('--bind') + 3), ['--bind', '/var/lib/stowage/r1', '/']);
    assert.deepEqual(a.slice(a.indexOf('--size'), a.indexOf('--size') + 4), ['--size', '1024', '--tmpfs', '/tmp/t']);
    assert.deepEqual(a.slice(a.indexOf('--')), ['--', '/bin/sh', '-c', 'true']);
    const envArgs = a.flatMap((x, i) => (x === '--setenv' ? [`${a[i + 1]}=${a[i + 2]}`] : []));
    assert.deepEqual(envArgs, ['A=2', 'B=x=y', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    assert.ok(!bwrapArgs({ ...plan, network: 'host' }).includes('--unshare-net'));
  });

  it('root steps drop to Docker’s default capabilities', () => {
    const a = bwrapArgs({ ...plan, caps: ['CAP_CHOWN'] });
    assert.deepEqual(a.slice(a.indexOf('--cap-drop'), a.indexOf('--cap-drop') + 4), ['--cap-drop', 'ALL', '--cap-add', 'CAP_CHOWN']);
  });

  it('stages the rootfs and bind sources for the setuid-mode bwrap on a private tmpfs', () => {
    const { outerArgs, inner } = stageForSetuidBwrap(plan, '/root/.cache/stowage/r1');
    assert.equal(inner.root, '/tmp/root');
    assert.deepEqual(inner.mounts.map((m) => (m.kind === 'bind' ? m.source : m.kind)), ['/tmp/src0', 'tmpfs', '/tmp/src2']);
    assert.ok(outerArgs.join(' ').includes('--ro-bind / / --perms 0755 --tmpfs /tmp --bind /root/.cache/stowage/r1 /tmp/root'));
    assert.ok(outerArgs.join(' ').includes('--ro-bind /dev/shm/x/hosts /tmp/src0'));
    assert.equal(outerArgs[outerArgs.length - 1], '--');
  });

  it('never leaks stowage’s own groups to the step', () => {
    assert.deepEqual(groupFlags([]), ['--clear-groups']);
    assert.deepEqual(groupFlags([5, 6]), ['--groups=5,6']);
  });

  it('envPairs keeps an explicit PATH', () => {
    assert.deepEqual(envPairs(['PATH=/x']), [['PATH', '/x']]);
  });

  it('cleanContainerPath joins relative targets to WORKDIR and clamps ..', () => {
    assert.equal(cleanContainerPath('cache', '/app'), '/app/cache');
    assert.equal(cleanContainerPath('../../../x', '/app'), '/x');
    assert.equal(cleanContainerPath('/a/./b//c/'), '/a/b/c');
  });
});

describe('explainBwrapFailure', () => {
  it('names the sysctls when unprivileged user namespaces are off', () => {
    const e = explainBwrapFailure('bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces.\n', false);
    assert.equal(e.code, 'engine/sandbox-failed');
    assert.match(e.message, /No permissions to create new namespace/);
    assert.match(e.hint ?? '', /kernel\.unprivileged_userns_clone=1/);
    assert.match(e.hint ?? '', /user\.max_user_namespaces/);
  });
  it('points root inside a restricted container at --isolation=chroot', () => {
    const e = explainBwrapFailure('bwrap: Creating new namespace failed: Operation not permitted\n', true);
    assert.match(e.hint ?? '', /--isolation=chroot/);
    assert.doesNotMatch(e.hint ?? '', /unprivileged_userns_clone/);
  });
});

describe('OutputTail', () => {
  it('keeps the last lines across chunk boundaries, including a split UTF-8 character and a partial last line', () => {
    const t = new OutputTail(2);
    const bytes = Buffer.from('a\nb\nçé\nlast');
    for (let i = 0; i < bytes.length; i++) t.push(bytes.subarray(i, i + 1));
    assert.deepEqual(t.result(), ['çé', 'last']);
    const crlf = new OutputTail(5);
    crlf.push(Buffer.from('x\r\ny\r\n'));
    assert.deepEqual(crlf.result(), ['x', 'y']);
  });
});
