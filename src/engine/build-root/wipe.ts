/**
 * Emptying the build root before a stage (Kaniko's DeleteFilesystem): everything goes except the
 * ignored paths; a directory that holds an ignored path stays (as a directory) and is emptied around
 * it. Never crosses into an ignored path, so mounts and stowage's own files are never touched.
 */
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { StowageError, errorMessage } from '../../util/errors.js';
import { holdsIgnored, isIgnored } from './ignore-list.js';

function wipeError(host: string, e: unknown): StowageError {
  const { code, path: failed, syscall } = e as NodeJS.ErrnoException;
  // Name the file that refused (deep inside `host`), not the top directory being removed.
  const what = failed ?? host;
  return new StowageError('engine/build-root-wipe-failed', `--isolation=none cannot empty the build root: removing ${what} failed: ${code ?? errorMessage(e)}${syscall ? ` (${syscall})` : ''}`, {
    hint:
      code === 'EACCES' || code === 'EPERM'
        ? 'the files belong to another user or are immutable: run the container as root with CAP_DAC_OVERRIDE and CAP_FOWNER, or use --ignore-path for that path'
        : code === 'EBUSY'
          ? 'it is a mount point stowage did not see in /proc/self/mountinfo: add it with --ignore-path'
          : code === 'EROFS'
            ? 'the container\'s / is read-only: --isolation=none needs a writable root filesystem'
            : 'add the path with --ignore-path if it must stay',
    cause: e,
  });
}

/** Deletes everything under `root` except `ignore` (relative paths) and the directories that lead to them. */
export async function wipeRoot(root: string, ignore: ReadonlySet<string>, signal?: AbortSignal): Promise<void> {
  const walk = async (host: string, rel: string): Promise<void> => {
    for (const name of readdirSync(host)) {
      signal?.throwIfAborted();
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const childHost = host === '/' ? `/${name}` : `${host}/${name}`;
      if (isIgnored(childRel, ignore)) continue;
      if (holdsIgnored(childRel, ignore) && lstatSync(childHost).isDirectory()) {
        await walk(childHost, childRel);
        continue;
      }
      try {
        // Async recursion: a base image's worth of files must not stall the event loop (abort, progress).
        await rm(childHost, { recursive: true, force: true });
      } catch (e) {
        throw wipeError(childHost, e);
      }
    }
  };
  await walk(root, '');
}

/**
 * The synchronous form for the layer unpacker (an opaque-directory marker or a whiteout on a
 * directory that holds ignored paths): empties `host` around the ignored paths, keeps it.
 */
export function removeAroundIgnored(host: string, rel: string, ignore: ReadonlySet<string>): void {
  if (isIgnored(rel, ignore)) return;
  const st = lstatSync(host, { throwIfNoEntry: false });
  if (st === undefined) return;
  if (!st.isDirectory() || !holdsIgnored(rel, ignore)) {
    rmSync(host, { recursive: true, force: true });
    return;
  }
  for (const name of readdirSync(host)) removeAroundIgnored(`${host}/${name}`, `${rel}/${name}`, ignore);
}
