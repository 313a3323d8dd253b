/** Exit codes and the one place an escaped error becomes a message (shared by main and executor). */
import { errorMessage, isStowageError } from '../util/errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** The single place that turns an escaped error into a message; never prints a stack trace. */
export function reportFatal(e: unknown): number {
  if (isStowageError(e)) {
    const where = e.file ? `${e.file}${e.range ? `:${e.range.start.line}:${e.range.start.column}` : ''}: ` : '';
    process.stderr.write(`stowage: error: ${where}${e.message}\n`);
    if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
    return e.code.startsWith('usage/') ? EXIT_USAGE : EXIT_FAILED;
  }
  process.stderr.write(`stowage: internal error: ${errorMessage(e)}\n`);
  if (process.env.STOWAGE_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
  else process.stderr.write('hint: this is a bug in stowage; rerun with STOWAGE_DEBUG=1 and report the output\n');
  return EXIT_FAILED;
}

