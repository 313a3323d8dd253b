/**
 * Composition root. Keeps startup cheap: command modules are imported only when used.
 */
import { StowageError, errorMessage, isStowageError } from '../util/errors.js';
import { packageVersion } from './version.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

const USAGE = `stowage — daemonless container image builder

Usage: stowage <command> [options]

Commands:
  lint       check a build spec and every Dockerfile it names
  plan       print the compiled build graph (text, json, dot)
  build      build images of a spec (all, or the named images/groups/globs)
  executor   build one Dockerfile with Kaniko's flag names
  copy       copy an image between registries, oci: layouts and docker-archive: files
  schema     print the JSON Schema of the build spec

Run 'stowage <command> --help' for a command's options.
Global: --version, --help
`;

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        process.stdout.write(USAGE);
        process.exitCode = cmd === undefined ? EXIT_USAGE : EXIT_OK;
        return;
      case '--version':
      case '-V':
      case 'version':
        process.stdout.write(`stowage ${packageVersion()}\n`);
        return;
      default: {
        const { runCommand } = await import('./commands.js');
        process.exitCode = await runCommand(cmd, rest);
        return;
      }
    }
  } catch (e) {
    process.exitCode = reportFatal(e);
  }
}

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

export { StowageError };
