import { StowageError } from '../util/errors.js';
import { didYouMean } from '../util/levenshtein.js';
import type { TlsTrust } from '../registry/tls-trust.js';

/** What the composition root (main.ts) made once for the whole run. */
export interface CommandContext {
  /** CAs for registry and download TLS connections (the launcher's deferred NODE_EXTRA_CA_CERTS). */
  tls?: TlsTrust;
}

type CommandRunner = (argv: string[], context: CommandContext) => Promise<number>;

/** Each command's module is imported only when it runs, so startup stays cheap. */
const COMMANDS: Record<string, () => Promise<CommandRunner>> = {
  lint: async () => (await import('./lint.js')).runLint,
  plan: async () => (await import('./plan.js')).runPlan,
  schema: async () => (await import('./schema.js')).runSchema,
  executor: async () => (await import('./executor.js')).runExecutor,
  copy: async () => {
    const { runCopy } = await import('./copy.js');
    return (argv, context) => runCopy(argv, { stdout: process.stdout, env: process.env, ...(context.tls ? { tls: context.tls } : {}) });
  },
  build: async () => (await import('./build.js')).runBuild,
};

export async function runCommand(name: string, argv: string[], context: CommandContext = {}): Promise<number> {
  const load = COMMANDS[name];
  if (!load) {
    const guess = didYouMean(name, Object.keys(COMMANDS));
    throw new StowageError('usage/unknown-command', `unknown command ${JSON.stringify(name)}`, {
      hint: guess ? `did you mean '${guess}'? Run 'stowage --help' for the list` : "run 'stowage --help' for the list of commands",
    });
  }
  return (await load())(argv, context);
}
