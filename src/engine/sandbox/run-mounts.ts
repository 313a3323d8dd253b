/**
 * `RUN --mount` (DOCKERFILE.md A21) → the sandbox's mounts.
 *
 * - `bind`: `source` inside `from` (a stage's rootfs, an image, or the build context by default),
 *   resolved in that root so a symlink cannot reach the host; from the context, only what
 *   .dockerignore keeps (../context/filtered-view.ts). Read-only by default; `rw` binds a
 *   temporary copy (`cp -a`), so writes are discarded.
 * - `cache`: `<cacheDir>/run-cache/<sha256(id)>`, created with mode/uid/gid (and seeded from
 *   `from`/`source`) the first time; persists across builds and never enters a layer (the sandbox
 *   mounts it, the snapshot ignores the target). `sharing=shared` uses it concurrently, `locked`
 *   waits for `<dir>.lock` (one holder at a time, in this process and across processes), `private`
 *   takes the lock if free and otherwise gets a fresh empty directory for this step only.
 * - `secret`: from the secrets provider; a missing secret is an error only with `required=true`;
 *   `env=NAME` exposes it as an environment variable (returned in `env`).
 * - `tmpfs`: passed through with its size.
 * - `ssh`: agent forwarding is not supported; `required=true` fails, otherwise skipped.
 *
 * `release()` must be called after the step (it is safe to call twice): it removes temporary
 * copies and drops cache locks.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, open, readFile, rename, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { MountSpec } from '../../dockerfile/types.js';
import { withMountDefaults } from '../../dockerfile/instructions/mount.js';
import { StowageError } from '../../util/errors.js';
import { cleanContainerPath, resolveInRoot } from './in-root.js';
import { contextView } from '../context/filtered-view.js';
import type { IgnoreMatcher } from '../context/dockerignore.js';
import type { SandboxMount } from './types.js';

const execFileAsync = promisify(execFile);

export type SecretsProvider = (id: string) => Promise<Buffer | undefined>;

export interface RunMountContext {
  /** The stage's rootfs (where the step runs). */
  rootfs: string;
  /** WORKDIR, for relative targets. */
  workdir: string;
  /** Build context directory: the default `from` of bind mounts. */
  contextDir: string;
  /** The context's .dockerignore: a bind mount from the context shows only what it keeps (BuildKit's view). */
  contextIgnore: IgnoreMatcher;
  /** Rootfs directory of a stage (name or index) or image named in `from=`. */
  stageRootfs: (ref: string) => Promise<string>;
  /** stowage's cache directory; cache mounts live in `<cacheDir>/run-cache/`. */
  cacheDir: string;
  secrets: SecretsProvider;
  signal: AbortSignal;
  /** Where rw bind copies and private caches go; default `<cacheDir>/run-tmp`. */
  tmpDir?: string;
  /** Lock polling interval in ms (default 100). */
  lockPollMs?: number;
}

export interface MappedRunMounts {
  mounts: SandboxMount[];
  /** `NAME=value` entries for secrets with `env=`. */
  env: string[];
  release(): Promise<void>;
}

/** The cache directory for a cache mount id (pure). */
export function cacheMountDir(cacheDir: string, id: string): string {
  return path.join(cacheDir, 'run-cache', createHash('sha256').update(id).digest('hex'));
}

export async function mapRunMounts(specs: MountSpec[], ctx: RunMountContext): Promise<MappedRunMounts> {
  const mounts: SandboxMount[] = [];
  const env: string[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    let sshIndex = 0;
    for (const raw of specs) {
      ctx.signal.throwIfAborted();
      const spec = withMountDefaults(raw, { workdir: ctx.workdir, ...(raw.type === 'ssh' ? { sshIndex: sshIndex++ } : {}) });
      const target = spec.target === undefined || spec.target === '' ? undefined : cleanContainerPath(spec.target, ctx.workdir);
      if (target === '/') throw mountError(spec, 'mount target cannot be /', 'choose a directory below /');
      switch (spec.type) {
        case 'bind': {
          if (!target) throw mountError(spec, 'a bind mount needs a target', 'add target=<path>');
          const source = await resolveSource(spec, ctx, cleanups);
          if (spec.readOnly) {
            mounts.push({ kind: 'bind', source, target, readonly: true });
          } else {
            const copy = await tempDir(ctx, 'bind-');
            cleanups.push(() => rm(copy, { recursive: true, force: true }));
            const dest = path.join(copy, 'data');
            await execFileAsync('cp', ['-a', '--reflink=auto', '--', source, dest], { signal: ctx.signal });
            mounts.push({ kind: 'bind', source: dest, target, readonly: false });
          }
          break;
        }
        case 'cache': {
          if (!target) throw mountError(spec, 'a cache mount needs a target', 'add target=<path>');
          const dir = await ensureCacheDir(spec, ctx);
          const sharing = spec.sharing ?? 'shared';
          if (sharing === 'shared') {
            mounts.push({ kind: 'bind', source: dir, target, readonly: spec.readOnly });
          } else if (sharing === 'locked') {
            const unlock = await acquireLock(`${dir}.lock`, { wait: true, signal: ctx.signal, pollMs: ctx.lockPollMs ?? 100 });
            cleanups.push(unlock!);
            mounts.push({ kind: 'bind', source: dir, target, readonly: spec.readOnly });
          } else {
            const unlock = await acquireLock(`${dir}.lock`, { wait: false, signal: ctx.signal, pollMs: ctx.lockPollMs ?? 100 });
            if (unlock) {
              cleanups.push(unlock);
              mounts.push({ kind: 'bind', source: dir, target, readonly: spec.readOnly });
            } else {
              // Another step holds it: this one gets its own empty cache, discarded afterwards.
              const own = await tempDir(ctx, 'cache-');
              cleanups.push(() => rm(own, { recursive: true, force: true }));
              await applyOwnership(own, spec);
              mounts.push({ kind: 'bind', source: own, target, readonly: spec.readOnly });
            }
          }
          break;
        }
        case 'tmpfs':
          if (!target) throw mountError(spec, 'a tmpfs mount needs a target', 'add target=<path>');
          mounts.push({ kind: 'tmpfs', target, ...(spec.size !== undefined && spec.size > 0 ? { sizeBytes: spec.size } : {}) });
          break;
        case 'secret': {
          const id = spec.id ?? '';
          const content = await ctx.secrets(id);
          if (content === undefined) {
            if (spec.required) {
              throw mountError(spec, `secret ${JSON.stringify(id)} is required but was not provided`, `pass it to the build, e.g. --secret id=${id},src=<file> or --secret id=${id},env=<VAR>`);
            }
            break; // A21: a missing optional secret is silently skipped
          }
          if (target) mounts.push({ kind: 'file', content, target, mode: spec.mode ?? 0o400, uid: spec.uid ?? 0, gid: spec.gid ?? 0 });
          if (spec.env) env.push(`${spec.env}=${content.toString('utf8')}`);
          break;
        }
        case 'ssh':
          if (spec.required) {
            throw mountError(spec, 'SSH agent forwarding (--mount=type=ssh) is not supported by stowage', 'fetch private sources with a secret mount instead (e.g. a deploy key or token)');
          }
          break;
        default: {
          const never: never = spec.type;
          throw mountError(spec, `unsupported mount type ${String(never)}`, 'use bind, cache, tmpfs or secret');
        }
      }
    }
    return { mounts, env, release };
  } catch (e) {
    await release();
    throw e;
  }
}

function mountError(spec: MountSpec, message: string, hint: string): StowageError {
  return new StowageError('engine/run-mount', `--mount=${spec.raw}: ${message}`, { hint });
}

async function tempDir(ctx: RunMountContext, prefix: string): Promise<string> {
  const base = ctx.tmpDir ?? path.join(ctx.cacheDir, 'run-tmp');
  await mkdir(base, { recursive: true, mode: 0o700 });
  return mkdtemp(path.join(base, prefix));
}

/**
 * The host path of `source` inside the mount's `from` root (context by default), resolved in that
 * root. From the context: what .dockerignore keeps of it (a filtered copy, removed by `cleanups`,
 * when it excludes something there).
 */
async function resolveSource(spec: MountSpec, ctx: RunMountContext, cleanups: Array<() => Promise<void>>): Promise<string> {
  const root = spec.from ? await ctx.stageRootfs(spec.from) : ctx.contextDir;
  const resolved = await resolveInRoot(root, spec.source ?? '/');
  if (!resolved.exists) {
    const where = spec.from ? `stage or image ${JSON.stringify(spec.from)}` : 'the build context';
    throw mountError(spec, `source ${JSON.stringify(spec.source ?? '/')} not found in ${where}`, 'check the source path (it is relative to the root of from=, or of the build context)');
  }
  if (spec.from) return resolved.hostPath;
  try {
    return await contextView({
      hostPath: resolved.hostPath,
      rel: resolved.inRootPath.slice(1),
      ignore: ctx.contextIgnore,
      tempDir: async () => {
        const dir = await tempDir(ctx, 'view-');
        cleanups.push(() => rm(dir, { recursive: true, force: true }));
        return dir;
      },
      signal: ctx.signal,
    });
  } catch (e) {
    if (e instanceof StowageError && e.code === 'context/excluded') throw mountError(spec, e.message, e.hint ?? '');
    throw e;
  }
}

async function applyOwnership(dir: string, spec: MountSpec): Promise<void> {
  await chmod(dir, spec.mode ?? 0o755);
  await chown(dir, spec.uid ?? 0, spec.gid ?? 0).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPERM') throw e; // rootless: the cache stays ours
  });
}

/** Creates the cache dir on first use (mode/uid/gid, seeded from from/source), atomically via rename. */
async function ensureCacheDir(spec: MountSpec, ctx: RunMountContext): Promise<string> {
  const dir = cacheMountDir(ctx.cacheDir, spec.id ?? spec.target ?? '');
  const exists = await open(dir, 'r').then(
    async (fh) => {
      await fh.close();
      return true;
    },
    () => false,
  );
  if (exists) return dir;
  await mkdir(path.dirname(dir), { recursive: true, mode: 0o700 });
  const tmp = await mkdtemp(`${dir}.new-`);
  try {
    if (spec.from !== undefined || spec.source !== undefined) {
      const seed = spec.from ? await resolveSource(spec, ctx, []) : undefined;
      if (seed) await execFileAsync('cp', ['-a', '--reflink=auto', '--', `${seed}/.`, tmp], { signal: ctx.signal });
    }
    await applyOwnership(tmp, spec);
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTEMPTY') return dir; // someone else created it first
    throw e;
  }
  return dir;
}

/**
 * A lock file holding the owner's pid. A lock whose pid is gone (crashed build) is taken over.
 * Returns the unlock function, or undefined when `wait` is false and the lock is held.
 */
export async function acquireLock(
  lockPath: string,
  options: { wait: boolean; signal: AbortSignal; pollMs: number },
): Promise<(() => Promise<void>) | undefined> {
  const token = `${process.pid}:${Math.random().toString(36).slice(2)}`;
  for (;;) {
    options.signal.throwIfAborted();
    try {
      const fh = await open(lockPath, 'wx', 0o600);
      await fh.writeFile(token);
      await fh.close();
      return async () => {
        const current = await readFile(lockPath, 'utf8').catch(() => '');
        if (current === token) await unlink(lockPath).catch(() => undefined);
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = await readFile(lockPath, 'utf8').catch(() => '');
    const pid = Number(holder.split(':')[0]);
    if (Number.isInteger(pid) && pid > 0 && !isAlive(pid)) {
      await unlink(lockPath).catch(() => undefined);
      continue;
    }
    if (!options.wait) return undefined;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        options.signal.removeEventListener('abort', onAbort);
        resolve();
      }, options.pollMs);
      const onAbort = (): void => {
        clearTimeout(t);
        reject(options.signal.reason);
      };
      options.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
