/**
 * Flag parsing for the spec commands (lint, plan, build, schema) on top of node:util parseArgs,
 * with usage errors as StowageErrors (exit 2) that suggest the closest known flag.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { StowageError } from '../util/errors.js';
import { didYouMean } from '../util/levenshtein.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface ParsedCommandArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export function parseCommandArgs(command: string, argv: readonly string[], options: OptionSpec): ParsedCommandArgs {
  try {
    const { values, positionals } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    return { values: values as ParsedCommandArgs['values'], positionals };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const flag = /'(-{1,2}[^' ]+)'/.exec(msg)?.[1];
    const known = Object.keys(options).map((k) => `--${k}`);
    const guess = flag ? didYouMean(flag.replace(/=.*/, ''), known) : undefined;
    throw new StowageError('usage/bad-flag', `${command}: ${msg.replace(/\. To specify a positional argument.*$/s, '')}`, {
      hint: guess ? `did you mean ${guess}? Run 'stowage ${command} --help'` : `run 'stowage ${command} --help' for the options`,
    });
  }
}

/** `--var K=V` (repeatable) → record; a missing `=` is a usage error. */
export function parseKeyValues(flag: string, items: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) {
      throw new StowageError('usage/bad-flag', `${flag} ${JSON.stringify(item)} is not KEY=VALUE`, {
        hint: `write it as ${flag} NAME=value`,
      });
    }
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new StowageError('usage/bad-flag', `${flag} must be one of ${allowed.join(', ')}, not ${JSON.stringify(value)}`);
}
