/** How the micro benchmarks start stowage's launcher the way its shebang would. */
import { readFileSync } from 'node:fs';

/** The node flags in a launcher's `#!/usr/bin/env -S node …` line (none for a plain `#!/usr/bin/env node`). */
export function shebangNodeFlags(launcher: string): string[] {
  const first = readFileSync(launcher, 'utf8').split('\n', 1)[0]!;
  const m = /^#!.*\bnode((?:\s+\S+)*)\s*$/.exec(first);
  return m ? m[1]!.split(/\s+/).filter((f) => f !== '') : [];
}

