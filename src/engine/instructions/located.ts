import { StowageError } from '../../util/errors.js';

/** Errors from helpers that know no Dockerfile position get the instruction's. */
export function withLocation(e: unknown, where: { file: string; range: StowageError['range'] }): unknown {
  if (e instanceof StowageError && e.file === undefined) {
    const range = e.range ?? where.range;
    return new StowageError(e.code, e.message, { file: where.file, ...(range ? { range } : {}), ...(e.hint ? { hint: e.hint } : {}), cause: e });
  }
  // A system call refused while the builder itself changed files (not a RUN step's own failure):
  // most often a capability the container does not grant. Say which, at the instruction.
  const errno = (e as NodeJS.ErrnoException | undefined)?.code;
  if (e instanceof Error && (errno === 'EPERM' || errno === 'EACCES')) {
    return new StowageError('build/permission-denied', `${e.message}`, {
      file: where.file,
      ...(where.range ? { range: where.range } : {}),
      hint:
        'stowage was not allowed to set owners, modes or times on files it writes. Run it as root; in a container ' +
        'with --cap-drop=ALL, add CHOWN, FOWNER, DAC_OVERRIDE, SETUID, SETGID and SYS_CHROOT (see deploy/README.md)',
      cause: e,
    });
  }
  return e;
}
