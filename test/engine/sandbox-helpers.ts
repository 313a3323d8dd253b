/**
 * A tiny rootfs made by hand from the host's static busybox: enough for sh, id, ls, cat, touch…
 * and an /etc/passwd with a user, so sandbox tests run real bubblewrap against a real image tree.
 */
import { chmod, mkdir, mkdtemp, copyFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'ls', 'cat', 'id', 'touch', 'echo', 'pwd', 'sleep', 'mkdir', 'stat', 'hostname', 'ip', 'env', 'test', 'true', 'false', 'rm', 'ps', 'wc', 'head', 'grep'];

export interface TinyRootfs {
  dir: string;
  /** Removes the rootfs (and everything under its temp parent). */
  cleanup(): Promise<void>;
}

export async function makeTinyRootfs(): Promise<TinyRootfs> {
  const parent = await mkdtemp(path.join(os.tmpdir(), 'stowage-sbx-'));
  const dir = path.join(parent, 'rootfs');
  await mkdir(path.join(dir, 'bin'), { recursive: true });
  await mkdir(path.join(dir, 'etc'));
  await mkdir(path.join(dir, 'tmp'));
  await chmod(path.join(dir, 'tmp'), 0o1777);
  await mkdir(path.join(dir, 'home', 'app'), { recursive: true });
  await copyFile(BUSYBOX, path.join(dir, 'bin', 'busybox'));
  await chmod(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const a of APPLETS) await symlink('busybox', path.join(dir, 'bin', a));
  await writeFile(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  await writeFile(path.join(dir, 'etc', 'group'), 'root:x:0:\napp:x:1000:\nstaff:x:50:app\n');
  return { dir, cleanup: () => rm(parent, { recursive: true, force: true }) };
}
