/** Command-line flags of the micro benchmarks: `--name value`, repeatable where a script says so. */
const argv = process.argv.slice(2);

/** The value after the first `--name`, or `dflt` when the flag is absent. */
export function flag(name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : dflt;
}

/** Every value given with `--name`, in order. */
export function flags(name: string): string[] {
  return argv.flatMap((a, i) => (a === `--${name}` ? [argv[i + 1]!] : []));
}
