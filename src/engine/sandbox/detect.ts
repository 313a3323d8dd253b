/**
 * Choosing an isolation mode: bubblewrap if it can create its namespaces here, else chroot if the
 * process may chroot (an unprivileged container), else an error that names what is missing and
 * what is left. Never `none` on its own: that runs steps without any sandbox and must be asked for.
 *
 * Probing spawns processes, so the result is memoised in the object `createIsolationDetector`
 * returns (one per process/build, owned by the caller), not in module state.
 */
import { spawn } from 'node:child_process';
import { StowageError } from '../../util/errors.js';
import { defaultHostTools, explainBwrapFailure } from './host-tools.js';
import type { HostTools, Isolation } from './types.js';

export interface IsolationChoice {
  isolation: Isolation;
  /** Why this mode was chosen (for `--verbose` / the report). */
  reason: string;
}

export interface IsolationDetector {
  detect(signal: AbortSignal): Promise<IsolationChoice>;
}

interface ProbeResult {
  ok: boolean;
  stderr: string;
  missing: boolean;
}

function probe(file: string, args: string[], signal: AbortSignal): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let stderr = '';
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, signal });
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 8192) stderr += c.toString('utf8');
    });
    child.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, stderr: stderr || e.message, missing: e.code === 'ENOENT' }));
    child.on('close', (code) => resolve({ ok: code === 0, stderr, missing: false }));
  });
}

/** bubblewrap's messages for a refused unshare/clone (kernel setting, seccomp or missing capability). */
const NAMESPACE_REFUSED = /No permissions to create new namespace|Creating new namespace failed|unshare failed|setting up uid map|Operation not permitted/i;

export async function detectIsolation(signal: AbortSignal, tools: HostTools = defaultHostTools()): Promise<IsolationChoice> {
  const asRoot = process.getuid?.() === 0;
  // The namespaces a step gets, created the way a step creates them: root's steps make no user
  // namespace (`--unshare-all` would try one, which any user may create, and so pass where root
  // without CAP_SYS_ADMIN cannot run a single step); rootless steps make one.
  const namespaces = [...(asRoot ? [] : ['--unshare-user']), '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net'];
  const bw = await probe(tools.bwrap, [...namespaces, '--die-with-parent', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', 'true'], signal);
  signal.throwIfAborted();
  if (bw.ok) return { isolation: 'bwrap', reason: `bubblewrap (${tools.bwrap}) can create mount, pid, ipc, uts and net namespaces` };
  const bwrapProblem = bw.missing
    ? 'bubblewrap is not installed (Debian package bubblewrap)'
    : NAMESPACE_REFUSED.test(bw.stderr)
      ? // bwrap's own text blames the kernel's userns setting; in a container it is the missing
        // CAP_SYS_ADMIN / seccomp profile, so name both rather than mislead.
        `bubblewrap cannot create namespaces here (${asRoot ? 'no CAP_SYS_ADMIN, or a seccomp profile that refuses unshare/mount, as in an unprivileged container' : 'unprivileged user namespaces are disabled or refused'})`
      : explainBwrapFailure(bw.stderr, asRoot).message;

  const ch = await probe(tools.chroot, ['/', 'true'], signal);
  signal.throwIfAborted();
  if (ch.ok) {
    return {
      isolation: 'chroot',
      reason: `${bwrapProblem}; chroot works (CAP_SYS_CHROOT), so steps run chrooted: no /proc, no mounts, not a security boundary`,
    };
  }
  throw new StowageError('engine/no-isolation', `cannot sandbox RUN steps here: ${bwrapProblem}; and chroot is not permitted (${ch.stderr.trim() || 'missing CAP_SYS_CHROOT'})`, {
    hint:
      'install bubblewrap and allow namespaces (root, or unprivileged user namespaces), or grant CAP_SYS_CHROOT for --isolation=chroot; ' +
      'or, as the last resort, `stowage executor --isolation=none` in a throwaway container (Kaniko\'s model: the container\'s own / becomes the build root and is emptied for each stage; ' +
      'steps run with no isolation at all, they see and can change everything the container has; one build per container)',
  });
}

/** A detector that probes once and then answers from memory. */
export function createIsolationDetector(tools?: HostTools): IsolationDetector {
  let pending: Promise<IsolationChoice> | undefined;
  return {
    detect(signal: AbortSignal): Promise<IsolationChoice> {
      pending ??= detectIsolation(signal, tools).catch((e: unknown) => {
        pending = undefined; // an aborted or failed probe may be retried
        throw e;
      });
      return pending;
    },
  };
}
