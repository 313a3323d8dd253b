/**
 * The safety gate of `--isolation=none`: the build root is emptied before every stage, so with the
 * root `/` stowage refuses to start unless it can see that it runs in a container (the container is
 * then what gets consumed) or the user said `--force`. Evidence is read, never guessed from the
 * hostname or cgroups: /.dockerenv (Docker), /run/.containerenv (Podman, Buildah), or a `container=`
 * variable in PID 1's environment (systemd-nspawn, LXC, Podman).
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StowageError } from '../../util/errors.js';

export interface ContainerEvidence {
  /** What shows that this is a container, for the build's one isolation line. */
  evidence?: string;
}

/** Reads the container markers of this process's `/`. */
export function probeContainer(files: { root?: string } = {}): ContainerEvidence {
  const root = files.root ?? '/';
  if (existsSync(path.join(root, '.dockerenv'))) return { evidence: '/.dockerenv exists' };
  if (existsSync(path.join(root, 'run/.containerenv'))) return { evidence: '/run/.containerenv exists' };
  try {
    const env = readFileSync(path.join(root, 'proc/1/environ'), 'latin1').split('\0');
    const c = env.find((kv) => kv.startsWith('container='));
    if (c !== undefined && c.length > 'container='.length) return { evidence: `PID 1 has ${c}` };
  } catch {
    // not readable (not root, or no /proc): no evidence either way
  }
  return {};
}

/** Pure: may a build use `root` as its build root? Throws the refusal otherwise. */
export function assertBuildRootAllowed(o: { root: string; force: boolean; container: ContainerEvidence }): void {
  if (path.resolve(o.root) !== '/') return; // a directory the caller named explicitly (tests, chroot-like setups)
  if (o.container.evidence !== undefined || o.force) return;
  throw new StowageError(
    'engine/isolation-none-outside-container',
    '--isolation=none builds in this machine\'s own / and deletes everything there that is not on its ignore list before each stage; ' +
      'stowage does not seem to run in a container (no /.dockerenv, no /run/.containerenv, no container= in PID 1\'s environment), so this would delete the host\'s files',
    {
      hint: 'run stowage executor --isolation=none only inside a throwaway container (docker run …, a Kubernetes pod); ' +
        'if this really is a disposable container or VM, add --force',
    },
  );
}

/**
 * stowage's own install dir (the package root: dist or src, node_modules, bin), which lazy imports
 * read during the build. The node binary itself is not needed once running and is deliberately not
 * kept: a `FROM node` image must see its own node.
 */
export function installDir(moduleUrl: string = import.meta.url): string {
  let dir = path.dirname(fileURLToPath(moduleUrl));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return realOrSelf(dir);
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  // No package root found (a bundled single file): keep the directory of the running module.
  return realOrSelf(path.dirname(fileURLToPath(moduleUrl)));
}

/**
 * The real path of `p`; for a path that does not exist (yet), the real path of its deepest existing
 * ancestor with the rest appended (an output file in a symlinked directory); `p` itself when even
 * that cannot be resolved.
 */
export function realOrSelf(p: string): string {
  const rest: string[] = [];
  for (let at = path.resolve(p); ; ) {
    try {
      return path.join(realpathSync(at), ...rest);
    } catch (e) {
      const up = path.dirname(at);
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || up === at) return p;
      rest.unshift(path.basename(at));
      at = up;
    }
  }
}

/** Whether `p` is an existing directory. */
export function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
