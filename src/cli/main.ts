/**
 * Composition root. Keeps startup cheap: command modules are imported only when used.
 */
import { packageVersion } from './version.js';
import { EXIT_OK, EXIT_USAGE, reportFatal } from './report.js';
import { deferredTlsTrust } from '../registry/tls-trust.js';

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
  // First, before any command reads the environment or starts a child process: the launcher moved
  // NODE_EXTRA_CA_CERTS aside so Node would not load it at startup; this puts it back and keeps
  // the certificates for the first TLS connection (src/registry/tls-trust.ts).
  const tls = deferredTlsTrust(process.env);
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
        process.exitCode = await runCommand(cmd, rest, { tls });
        return;
      }
    }
  } catch (e) {
    process.exitCode = reportFatal(e);
  }
}

