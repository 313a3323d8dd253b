/** `stowage schema`: print the spec's JSON Schema (for editors and other tools). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommandArgs } from './args.js';

export function schemaPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schema', 'stowage.schema.json');
}

export async function runSchema(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('schema', argv, { help: { type: 'boolean', short: 'h' } });
  if (values.help) {
    process.stdout.write('Usage: stowage schema\n\nPrints the JSON Schema (2020-12) of the build spec.\n');
    return 0;
  }
  process.stdout.write(readFileSync(schemaPath(), 'utf8'));
  return 0;
}
