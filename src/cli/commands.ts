import { StowageError } from '../util/errors.js';
import { didYouMean } from '../util/levenshtein.js';

type CommandRunner = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<CommandRunner>> = {};

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
