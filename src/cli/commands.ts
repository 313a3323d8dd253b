import { StowageError } from '../util/errors.js';
import { didYouMean } from '../util/levenshtein.js';

type CommandRunner = (argv: string[]) => Promise<number>;

/** Each command's module is imported only when it runs, so startup stays cheap. */
const COMMANDS: Record<string, () => Promise<CommandRunner>> = {
  lint: async () => (await import('./lint.js')).runLint,
  plan: async () => (await import('./plan.js')).runPlan,
  schema: async () => (await import('./schema.js')).runSchema,
  executor: async () => (await import('./executor.js')).runExecutor,
  copy: async () => (await import('./copy.js')).runCopy,
  build: async () => (await import('./build.js')).runBuild,
};

export async function runCommand(name: string, argv: string[]): Promise<number> {
  const load = COMMANDS[name];
  if (!load) {
    const guess = didYouMean(name, Object.keys(COMMANDS));
    throw new StowageError('usage/unknown-command', `unknown command ${JSON.stringify(name)}`, {
      hint: guess ? `did you mean '${guess}'? Run 'stowage --help' for the list` : "run 'stowage --help' for the list of commands",
    });
  }
  return (await load())(argv);
}
