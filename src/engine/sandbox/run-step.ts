/**
 * Running one RUN step in the stage's rootfs.
 *
 * ## bwrap isolation (default)
 * bubblewrap bind-mounts the rootfs as `/` (pivot_root, the host's tree is unmounted), with a
 * fresh /proc in a new pid namespace, a minimal /dev, new ipc/uts (hostname `buildkitsandbox`) and,
 * for `--network=none`, net namespaces. Generated /etc/hosts and /etc/resolv.conf are bound over
 * the image's. The step's env reaches only the final command (`--clearenv --setenv`), never a host
 * binary, so an image's `ENV LD_PRELOAD=…` cannot load code into a privileged host process.
 *
 * ### Switching to the step's USER (the hard part)
 * The rootfs is a user image: it may have no setpriv/su at all, so the uid switch must happen
 * outside it. bwrap 0.8 run by root offers `--uid/--gid` only together with a new user
 * namespace, and then maps just that one uid to root: files the step creates would be owned by
 * root on disk. What works, and is what stowage does as root:
 *
 * - `USER root` (uid 0): `setpriv --regid=G --groups=… bwrap …` — bwrap keeps uid 0; we drop to
 *   Docker's default capability set (`--cap-drop ALL --cap-add CAP_CHOWN …`).
 * - any other uid U: bwrap's *setuid mode*. When bwrap starts with real uid U and effective uid 0
 *   it behaves exactly like a setuid-root bwrap: it builds the namespaces with privilege and runs
 *   the command as the real uid U with no capabilities and the supplementary groups it inherited.
 *   `setpriv --ruid=U --euid=0 --regid=G --groups=…` provides those credentials. setuid-mode bwrap
 *   checks mount sources with the real uid, and stowage's directories (under /root, /dev/shm
 *   0700 dirs) are not traversable by U, so an *outer* bwrap (root, mount namespace only, host `/`
 *   read-only) first binds the rootfs and every mount source to world-traversable paths on a
 *   private tmpfs; the inner, setuid-mode bwrap then takes them from there. Files created are owned
 *   by U on disk, as in docker.
 * - stowage not running as root: bwrap `--unshare-user --uid U --gid G` (needs unprivileged user
 *   namespaces); files are owned by the invoking user on disk and supplementary groups are not
 *   available — a known limitation of rootless mode.
 *
 * ## chroot isolation
 * For stowage inside an unprivileged container (no unshare, no mount, but CAP_SYS_CHROOT):
 * `setpriv --regid=G --groups=… nsenter --root=<rootfs> --wdns=<cwd> --setuid=U -- argv`.
 * (coreutils `chroot --userspec` would be the obvious tool, but it always chdirs to `/`, and
 * without a shell in the image nothing could then enter WORKDIR; util-linux nsenter can chroot,
 * chdir inside the new root and setuid without a target process.) Trade-offs: no /proc, /dev, /sys
 * unless the image has them; no new pid/net namespaces (processes the step leaves behind are
 * killed with its process group only); hostname is the container's; mounts are emulated (file and
 * tmpfs written into the rootfs and removed afterwards; bind/cache mounts are refused); and it is
 * not a security boundary — a root step can leave a chroot, and the step's env passes through the
 * host nsenter. The surrounding throwaway container is the boundary.
 *
 * ## none isolation (Kaniko's model)
 * The command runs directly in the container stowage runs in: no namespaces, no chroot, nothing
 * between the step and the container. The engine makes that correct by using the container's own
 * `/` as the build root (src/engine/build-root): emptied before each stage except the ignore list,
 * the stage's layers unpacked into it, snapshots over it. So `rootfs` must be the build root the
 * sandbox was created with (`buildRoot`); any other rootfs is refused, because what the step wrote
 * to absolute paths would be missing from the image. Only when explicitly selected.
 *
 * After the first stage the host's tools are the image's own (or gone), so nothing but the step's
 * own command is spawned: the uid/gid switch for `USER` is Node's (`spawn({uid, gid})`, which
 * needs CAP_SETUID/CAP_SETGID and clears supplementary groups — a `USER` step gets none; run
 * as the step's user itself when that matters), RUN --mount is emulated as under chroot, and
 * there is no separate hostname, /etc/hosts, pid or network namespace: the step sees the
 * container's. Trade-offs for the user: no isolation at all (a step can read and change everything
 * the container has, including stowage's cache and credentials), the container is consumed, and
 * one build runs per container.
 *
 * Mount points created in the rootfs (targets, /etc/hosts, /proc, /dev placeholders) are removed
 * by `runStep` itself before it returns (see stubs.ts); callers need not clean anything.
 */
import { accessSync, constants } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { assertNever, StowageError } from '../../util/errors.js';
import { defaultHostTools, explainBwrapFailure, missingToolError } from './host-tools.js';
import { cleanContainerPath, resolveInRoot } from './in-root.js';
import { spawnSandbox, type SpawnSandboxResult } from './process.js';
import { MountStubs } from './stubs.js';
import { DEFAULT_HOSTNAME, DEFAULT_PATH, type HostTools, type NetworkMode, type RunStepOptions, type RunStepResult, type SandboxMount } from './types.js';

/** Docker's default capability set for root in a container. */
export const DOCKER_DEFAULT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const DEFAULT_TAIL_LINES = 20;
/** Where the outer bwrap stages paths for the inner, setuid-mode one (a private tmpfs). */
const STAGE_DIR = '/tmp';
const HOSTS_CONTENT = (hostname: string): string =>
  `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`;

/** A mount with its source on the host and its target resolved inside the rootfs. */
export type PreparedMount =
  | { kind: 'bind'; source: string; target: string; readonly: boolean }
  | { kind: 'tmpfs'; target: string; sizeBytes?: number }
  /** Content bubblewrap reads from `fd` into its own tmpfs (exec-able even when /dev/shm is noexec); root-owned. */
  | { kind: 'data'; fd: number; target: string; mode: number };

export interface BwrapPlan {
  /** The rootfs as the (inner) bwrap sees it. */
  root: string;
  mounts: PreparedMount[];
  cwd: string;
  env: string[];
  hostname: string;
  network: NetworkMode;
  argv: string[];
  /** Capabilities to keep (root steps); undefined = bwrap's own default for its mode. */
  caps?: string[];
  /** `--unshare-user --uid --gid` for rootless operation. */
  userns?: { uid: number; gid: number };
  statusFd: number;
}

/** Arguments for the bwrap that runs the step (pure). */
export function bwrapArgs(plan: BwrapPlan): string[] {
  const a: string[] = ['--die-with-parent', '--new-session'];
  if (plan.userns) a.push('--unshare-user', '--uid', String(plan.userns.uid), '--gid', String(plan.userns.gid));
  a.push('--unshare-pid', '--unshare-ipc', '--unshare-uts');
  if (plan.network === 'none') a.push('--unshare-net');
  a.push('--hostname', plan.hostname, '--json-status-fd', String(plan.statusFd));
  a.push('--bind', plan.root, '/', '--proc', '/proc', '--dev', '/dev');
  for (const m of plan.mounts) {
    switch (m.kind) {
      case 'bind':
        a.push(m.readonly ? '--ro-bind' : '--bind', m.source, m.target);
        break;
      case 'tmpfs':
        if (m.sizeBytes !== undefined) a.push('--size', String(m.sizeBytes));
        a.push('--tmpfs', m.target);
        break;
      case 'data':
        a.push('--perms', (m.mode & 0o7777).toString(8).padStart(4, '0'), '--ro-bind-data', String(m.fd), m.target);
        break;
      default:
        assertNever(m, 'mount');
    }
  }
  if (plan.caps) {
    a.push('--cap-drop', 'ALL');
    for (const c of plan.caps) a.push('--cap-add', c);
  }
  a.push('--chdir', plan.cwd, '--clearenv');
  for (const [k, v] of envPairs(plan.env)) a.push('--setenv', k, v);
  a.push('--', ...plan.argv);
  return a;
}

/**
 * The outer bwrap for non-root steps (pure): a mount namespace with the host `/` read-only and a
 * private tmpfs at STAGE_DIR holding the rootfs and every bind source at traversable paths.
 * Returns the args and the plan with sources rewritten to the staged paths.
 */
export function stageForSetuidBwrap(plan: BwrapPlan, hostRoot: string): { outerArgs: string[]; inner: BwrapPlan } {
  const outer: string[] = ['--die-with-parent', '--ro-bind', '/', '/', '--perms', '0755', '--tmpfs', STAGE_DIR];
  const stagedRoot = `${STAGE_DIR}/root`;
  outer.push('--bind', hostRoot, stagedRoot);
  const mounts = plan.mounts.map((m, i): PreparedMount => {
    if (m.kind !== 'bind') return m;
    const staged = `${STAGE_DIR}/src${i}`;
    outer.push(m.readonly ? '--ro-bind' : '--bind', m.source, staged);
    return { ...m, source: staged };
  });
  outer.push('--clearenv', '--setenv', 'PATH', '/usr/sbin:/usr/bin:/sbin:/bin', '--');
  return { outerArgs: outer, inner: { ...plan, root: stagedRoot, mounts } };
}

/** `setpriv` flags for the step's groups: an explicit list, or none at all (never root's). */
export function groupFlags(supplementaryGids: number[]): string[] {
  return supplementaryGids.length > 0 ? [`--groups=${supplementaryGids.join(',')}`] : ['--clear-groups'];
}

/** `KEY=value` entries as pairs; entries without `=` are dropped, later duplicates win; PATH defaulted. */
export function envPairs(env: string[]): Array<[string, string]> {
  const map = new Map<string, string>();
  for (const kv of env) {
    const eq = kv.indexOf('=');
    if (eq <= 0) continue;
    map.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  if (!map.has('PATH')) map.set('PATH', DEFAULT_PATH);
  return [...map];
}

export async function runStep(options: RunStepOptions): Promise<RunStepResult> {
  options.signal.throwIfAborted();
  const isolation = options.isolation ?? 'bwrap';
  if (options.argv.length === 0) throw new StowageError('engine/empty-command', 'RUN has an empty command', { hint: 'give RUN a command' });
  const tools: HostTools = { ...defaultHostTools(), ...options.tools };
  const rootfs = path.resolve(options.rootfs);
  const rootStat = await stat(rootfs).catch(() => undefined);
  if (!rootStat?.isDirectory()) throw new StowageError('engine/rootfs-missing', `the stage's rootfs ${rootfs} is not a directory`);
  const cwd = cleanContainerPath(options.cwd);
  const mounts = options.mounts.map((m) => ({ ...m, target: cleanContainerPath(m.target, cwd) }));
  for (const m of mounts) {
    if (m.target === '/') throw new StowageError('engine/mount-target-root', 'a mount cannot target /', { hint: 'choose a directory below /' });
  }

  if (isolation === 'none') {
    // Checked before anything is created in the rootfs.
    const buildRoot = options.buildRoot === undefined ? undefined : path.resolve(options.buildRoot);
    if (buildRoot !== rootfs) {
      // Without chroot the step's `/` is the container's, not this rootfs: `RUN echo x > /f`
      // would succeed and the image would silently lack /f.
      throw new StowageError('engine/isolation-none-unsupported', `--isolation=none cannot run this RUN step: the stage's root filesystem is ${rootfs}, not the build root ${buildRoot ?? '/'}, so what the step writes to absolute paths would be missing from the image`, {
        hint: 'use stowage executor --isolation=none (the container\'s / becomes the build root), or grant CAP_SYS_CHROOT and use --isolation=chroot',
      });
    }
  }

  const stubs = new MountStubs(rootfs);
  // Scratch files (hosts, secrets) are bubblewrap's; chroot/none write emulated mounts into the rootfs.
  const scratch = isolation === 'bwrap' ? await makeScratchDir() : undefined;
  try {
    // WORKDIR that a previous step deleted is recreated (root, 0755) like runc does; it is part of the layer.
    const cwdResolved = await resolveInRoot(rootfs, cwd);
    if (!cwdResolved.exists) await mkdir(cwdResolved.hostPath, { recursive: true, mode: 0o755 });
    const common = { options, rootfs, cwd, mounts, stubs, scratch, tools };
    switch (isolation) {
      case 'bwrap':
        return await runBwrap(common);
      case 'chroot':
      case 'none':
        return await runWithoutNamespaces({ ...common, isolation });
      default:
        return assertNever(isolation, 'isolation');
    }
  } finally {
    await stubs.cleanup();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }
}

interface StepContext {
  options: RunStepOptions;
  rootfs: string;
  cwd: string;
  mounts: SandboxMount[];
  stubs: MountStubs;
  scratch: string | undefined;
  tools: HostTools;
}

/** Generated files (hosts, secrets, scripts) live in memory when /dev/shm exists, never in the rootfs. */
async function makeScratchDir(): Promise<string> {
  const base = (await stat('/dev/shm').then((s) => s.isDirectory(), () => false)) ? '/dev/shm' : os.tmpdir();
  const dir = await mkdtemp(path.join(base, 'stowage-run-'));
  return dir; // mkdtemp creates 0700
}

async function writeScratchFile(scratch: string, name: string, content: Buffer | string, mode: number, owner?: { uid: number; gid: number }): Promise<string> {
  const file = path.join(scratch, name);
  await writeFile(file, content, { mode: 0o600, flag: 'wx' });
  if (owner) await chown(file, owner.uid, owner.gid).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPERM') throw e; // rootless: the file stays ours
  });
  await chmod(file, mode);
  return file;
}

async function hostResolvConf(): Promise<string> {
  return readFile('/etc/resolv.conf', 'utf8').catch(() => '');
}

function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir + '/');
}

async function runBwrap(ctx: StepContext): Promise<RunStepResult> {
  const { options, rootfs, stubs, tools } = ctx;
  const scratch = ctx.scratch!;
  const hostname = options.hostname ?? DEFAULT_HOSTNAME;
  const asRoot = process.getuid?.() === 0;
  const { uid, gid, supplementaryGids } = options.user;
  // Checked before anything is spawned, so the error names the tool that is really missing.
  assertExecutable('bwrap', tools.bwrap);
  // A root step without supplementary groups needs no setpriv: Node's spawn with `gid` does what
  // `setpriv --regid=G --clear-groups` does (setgroups(0) then setgid(G)), one process less per step.
  const spawnAsGid = asRoot && uid === 0 && supplementaryGids.length === 0;
  if (asRoot && !spawnAsGid) assertExecutable('setpriv', tools.setpriv);

  // Mount points: /proc and /dev placeholders if the image lacks them; targets below /dev and
  // /proc live on bwrap's own tmpfs/proc and need nothing in the rootfs.
  await stubs.ensure('/proc', 'dir');
  await stubs.ensure('/dev', 'dir');
  const prepared: PreparedMount[] = [];
  const target = async (t: string, kind: 'dir' | 'file'): Promise<string> =>
    isUnder(t, '/dev') || isUnder(t, '/proc') ? t : (await stubs.ensure(t, kind)).inRootPath;

  const hostsFile = await writeScratchFile(scratch, 'hosts', HOSTS_CONTENT(hostname), 0o644);
  const resolvFile = await writeScratchFile(scratch, 'resolv.conf', await hostResolvConf(), 0o644);
  prepared.push({ kind: 'bind', source: hostsFile, target: await target('/etc/hosts', 'file'), readonly: true });
  prepared.push({ kind: 'bind', source: resolvFile, target: await target('/etc/resolv.conf', 'file'), readonly: true });

  // Parents before children, whatever order the Dockerfile listed them in.
  const ordered = [...ctx.mounts].sort((a, b) => a.target.split('/').length - b.target.split('/').length);
  let n = 0;
  const dataFds: Buffer[] = [];
  for (const m of ordered) {
    switch (m.kind) {
      case 'bind': {
        const st = await stat(m.source).catch(() => undefined);
        if (!st) throw new StowageError('engine/mount-source-missing', `mount source ${m.source} does not exist`);
        prepared.push({ kind: 'bind', source: m.source, target: await target(m.target, st.isDirectory() ? 'dir' : 'file'), readonly: m.readonly });
        break;
      }
      case 'tmpfs':
        prepared.push({ kind: 'tmpfs', target: await target(m.target, 'dir'), ...(m.sizeBytes !== undefined ? { sizeBytes: m.sizeBytes } : {}) });
        break;
      case 'file': {
        if ((m.mode & 0o111) !== 0 && m.uid === 0 && m.gid === 0) {
          // Scripts (heredoc `#!` bodies): /dev/shm is often mounted noexec, and a bind keeps that
          // flag, so bubblewrap copies them into its own tmpfs from a pipe instead.
          dataFds.push(Buffer.isBuffer(m.content) ? m.content : Buffer.from(m.content));
          prepared.push({ kind: 'data', fd: 3 + dataFds.length, target: await target(m.target, 'file'), mode: m.mode });
          break;
        }
        const file = await writeScratchFile(scratch, `file${n++}`, m.content, m.mode, { uid: m.uid, gid: m.gid });
        prepared.push({ kind: 'bind', source: file, target: await target(m.target, 'file'), readonly: true });
        break;
      }
      default:
        assertNever(m, 'mount');
    }
  }

  const plan: BwrapPlan = {
    root: rootfs,
    mounts: prepared,
    cwd: ctx.cwd,
    env: options.env,
    hostname,
    network: options.network,
    argv: options.argv,
    statusFd: 3,
  };
  const cleanEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
  let file: string;
  let args: string[];
  if (!asRoot) {
    file = tools.bwrap;
    args = bwrapArgs({ ...plan, userns: { uid, gid } });
  } else if (spawnAsGid) {
    file = tools.bwrap;
    args = bwrapArgs({ ...plan, caps: DOCKER_DEFAULT_CAPS });
  } else if (uid === 0) {
    file = tools.setpriv;
    args = [`--regid=${gid}`, ...groupFlags(supplementaryGids), '--', tools.bwrap, ...bwrapArgs({ ...plan, caps: DOCKER_DEFAULT_CAPS })];
  } else {
    const staged = stageForSetuidBwrap(plan, rootfs);
    file = tools.bwrap;
    args = [
      ...staged.outerArgs,
      tools.setpriv,
      `--ruid=${uid}`,
      '--euid=0',
      `--regid=${gid}`,
      ...groupFlags(supplementaryGids),
      '--',
      tools.bwrap,
      ...bwrapArgs(staged.inner),
    ];
  }
  const res = await spawnSandbox({
    file,
    args,
    env: cleanEnv,
    signal: options.signal,
    ...(options.onOutput ? { onOutput: options.onOutput } : {}),
    tailLines: options.tailLines ?? DEFAULT_TAIL_LINES,
    statusPipe: true,
    dataFds,
    ...(spawnAsGid ? { gid } : {}),
  });
  if (!res.spawnError && !res.aborted && res.statusExitCode === undefined && /^bwrap: execvp /m.test(res.stderrHead)) {
    // The sandbox was fine; the command does not exist in the image. Report it like a shell would.
    return { exitCode: 127, outputTail: res.outputTail };
  }
  return finish(res, options.signal, () => {
    if (res.spawnError) return missingToolError(file === tools.setpriv ? 'setpriv' : 'bwrap', file, res.spawnError);
    if (res.statusExitCode === undefined) return explainBwrapFailure(res.stderrHead, asRoot);
    return undefined;
  });
}

function assertExecutable(tool: keyof HostTools, file: string): void {
  try {
    accessSync(file, constants.X_OK);
  } catch (e) {
    throw missingToolError(tool, file, e);
  }
}

function finish(res: SpawnSandboxResult, signal: AbortSignal, failure: () => StowageError | undefined): RunStepResult {
  if (res.aborted || signal.aborted) throw signal.reason ?? new DOMException('the build was aborted', 'AbortError');
  const err = failure();
  if (err) throw err;
  return { exitCode: res.exitCode, outputTail: res.outputTail };
}

/**
 * chroot and none isolation: no namespaces and no mount rights, so `file` and `tmpfs` mounts are
 * emulated by writing into the rootfs and removing afterwards; bind mounts are refused.
 */
async function runWithoutNamespaces(ctx: StepContext & { isolation: 'chroot' | 'none' }): Promise<RunStepResult> {
  const { options, rootfs, stubs, tools } = ctx;
  const { uid, gid, supplementaryGids } = options.user;
  const asRoot = process.getuid?.() === 0;
  for (const m of ctx.mounts) {
    switch (m.kind) {
      case 'bind':
        throw new StowageError('engine/mount-unsupported', `RUN --mount on ${m.target} (bind or cache) needs mount rights, which --isolation=${ctx.isolation} does not have`, {
          hint: 'use --isolation=bwrap (run the container with the rights bubblewrap needs), or drop the mount',
        });
      case 'tmpfs': {
        const resolved = await resolveInRoot(rootfs, m.target);
        if (resolved.exists) {
          throw new StowageError('engine/mount-unsupported', `a tmpfs on existing ${m.target} cannot be emulated with --isolation=${ctx.isolation}`, {
            hint: 'mount the tmpfs on a path that does not exist in the image, or use --isolation=bwrap',
          });
        }
        await stubs.ensure(m.target, 'dir', { force: true });
        break;
      }
      case 'file': {
        const resolved = await resolveInRoot(rootfs, m.target);
        if (resolved.exists) {
          throw new StowageError('engine/mount-unsupported', `${m.target} exists in the rootfs; --isolation=${ctx.isolation} cannot mount a file over it`, {
            hint: 'pick a target that does not exist in the image, or use --isolation=bwrap',
          });
        }
        const { hostPath } = await stubs.ensure(m.target, 'file', { force: true });
        await writeFile(hostPath, m.content, { mode: 0o600 });
        await chown(hostPath, m.uid, m.gid).catch(() => undefined);
        await chmod(hostPath, m.mode);
        break;
      }
      default:
        assertNever(m, 'mount');
    }
  }
  const env = Object.fromEntries(envPairs(options.env));
  let file: string;
  let args: string[];
  let cwd: string | undefined;
  let credentials: { uid: number; gid: number } | undefined;
  if (ctx.isolation === 'chroot') {
    assertExecutable('nsenter', tools.nsenter);
    if (asRoot) assertExecutable('setpriv', tools.setpriv);
    const enter = [tools.nsenter, `--root=${rootfs}`, `--wdns=${ctx.cwd}`, ...(uid !== 0 ? [`--setuid=${uid}`] : []), '--', ...options.argv];
    if (asRoot) {
      file = tools.setpriv;
      args = [`--regid=${gid}`, ...groupFlags(supplementaryGids), '--', ...enter];
    } else {
      [file, ...args] = enter as [string, ...string[]];
    }
  } else {
    cwd = (await resolveInRoot(rootfs, ctx.cwd)).hostPath;
    [file, ...args] = options.argv as [string, ...string[]];
    const same = process.getuid?.() === uid && process.getgid?.() === gid;
    if (same) {
      // Root stays root with the groups it has: Node changes nothing it is not asked to.
    } else if (asRoot) {
      // No host setpriv (it may be gone after the base was unpacked into /): Node's own switch.
      credentials = { uid, gid };
    } else {
      throw new StowageError('engine/cannot-switch-user', `--isolation=none cannot run a step as ${uid}:${gid} when stowage runs as uid ${process.getuid?.()}`, {
        hint: 'run stowage as root in the throwaway container, or as the step\'s user',
      });
    }
  }
  const res = await spawnSandbox({
    file,
    args,
    env,
    ...(cwd ? { cwd } : {}),
    ...(credentials ?? {}),
    signal: options.signal,
    ...(options.onOutput ? { onOutput: options.onOutput } : {}),
    tailLines: options.tailLines ?? DEFAULT_TAIL_LINES,
    statusPipe: false,
  });
  return finish(res, options.signal, () => {
    if (!res.spawnError) return undefined;
    if (file === tools.setpriv) return missingToolError('setpriv', file, res.spawnError);
    if (file === tools.nsenter) return missingToolError('nsenter', file, res.spawnError);
    if (credentials && (res.spawnError.code === 'EPERM' || res.spawnError.code === 'EACCES')) {
      return new StowageError('engine/cannot-switch-user', `--isolation=none cannot run this step as ${uid}:${gid}: ${res.spawnError.message}`, {
        hint: 'the container needs CAP_SETUID and CAP_SETGID for USER steps (docker run --cap-add SETUID --cap-add SETGID), and the command must be executable by that user',
        cause: res.spawnError,
      });
    }
    return new StowageError('engine/command-not-found', `cannot run ${file}: ${res.spawnError.message}`, { cause: res.spawnError });
  });
}
