/**
 * Locating the host binaries the sandbox needs, and turning their absence or a failed namespace
 * setup into an error that says what to install or which sysctl to change.
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { StowageError } from '../../util/errors.js';
import type { HostTools } from './types.js';

const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

/** Which package provides each tool (Debian names), for the "install …" hint. */
const PACKAGE: Record<keyof HostTools, string> = {
  bwrap: 'bubblewrap',
  setpriv: 'util-linux',
  nsenter: 'util-linux',
  env: 'coreutils',
  chroot: 'coreutils',
};

/** First executable `name` in $PATH or the system dirs; the bare name when none (spawn then fails with ENOENT). */
export function findHostBinary(name: string, searchPath: string | undefined = process.env.PATH): string {
  const dirs = [...(searchPath ?? '').split(':').filter((d) => d.startsWith('/')), ...SYSTEM_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return name;
}

export function defaultHostTools(): HostTools {
  return {
    bwrap: findHostBinary('bwrap'),
    setpriv: findHostBinary('setpriv'),
    nsenter: findHostBinary('nsenter'),
    env: findHostBinary('env'),
    chroot: findHostBinary('chroot'),
  };
}

/** The error for a tool that could not be executed (spawn ENOENT/EACCES). */
export function missingToolError(tool: keyof HostTools, file: string, cause: unknown): StowageError {
  return new StowageError('engine/sandbox-unavailable', `cannot run ${file}: the sandbox needs ${tool}, which is not installed or not executable`, {
    hint: `install the Debian package ${PACKAGE[tool]} (apt-get install ${PACKAGE[tool]})${tool === 'bwrap' ? ', or pick --isolation=chroot inside an unprivileged container' : ''}`,
    cause,
  });
}

/**
 * Explains a bubblewrap setup failure from its stderr (pure). `asRoot` says whether stowage ran as
 * root: without root, bubblewrap needs unprivileged user namespaces.
 */
export function explainBwrapFailure(stderr: string, asRoot: boolean): StowageError {
  const line = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('bwrap:'))
    .join('; ') || stderr.trim().split('\n').slice(-3).join('; ') || '(no message)';
  const namespaceRefused = /No permissions to create new namespace|Creating new namespace failed|setting up uid map|unshare failed|Operation not permitted/i.test(stderr);
  let hint: string;
  if (namespaceRefused && !asRoot) {
    hint =
      'unprivileged user namespaces are disabled: enable them with `sysctl -w kernel.unprivileged_userns_clone=1` (Debian kernels) ' +
      'or `sysctl -w user.max_user_namespaces=15000`, and on Ubuntu 23.10+ `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`; ' +
      'or run stowage as root; inside an unprivileged container use --isolation=chroot';
  } else if (namespaceRefused) {
    hint =
      'the kernel or a seccomp/AppArmor policy refused to create namespaces (stowage is probably running inside a container without CAP_SYS_ADMIN): ' +
      'run the container with --privileged or a seccomp profile allowing unshare/mount, or use --isolation=chroot (no /proc, not a security boundary)';
  } else {
    hint = 'this is a sandbox setup failure, not a failure of the command; check that the rootfs and mount sources exist';
  }
  return new StowageError('engine/sandbox-failed', `could not set up the RUN sandbox: ${line}`, { hint });
}
