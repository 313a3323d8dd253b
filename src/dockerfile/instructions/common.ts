/**
 * Shared pieces of the per-instruction argument parsers: BuildKit's BFlags (instructions/bflag.go),
 * the error type they throw, and the fields every instruction carries.
 */
import type { RawNode } from '../ast.js';
import type { CommandLine, HeredocSpec } from '../types.js';
import { suggest as didYouMean } from '../suggest.js';

/** A problem in one instruction; parse.ts turns it into a Diagnostic at the instruction's range. */
export class InstructionError extends Error {
  constructor(
    message: string,
    readonly code: string = 'dockerfile/invalid-instruction',
    readonly hint?: string,
  ) {
    super(message);
  }
}

type FlagType = 'bool' | 'string' | 'strings';


export interface ParsedFlags {
  bool(name: string): boolean | undefined;
  string(name: string): string | undefined;
  strings(name: string): string[];
}

/** BuildKit BFlags.Parse: unknown/duplicate flags and missing values are errors. */
export function parseFlags(words: readonly string[], spec: Readonly<Record<string, FlagType>>): ParsedFlags {
  if (words.length === 0) return NO_FLAGS;
  const values = new Map<string, string | string[]>();
  for (const a of words) {
    if (a === '--') break;
    if (!a.startsWith('--')) throw new InstructionError(`arg should start with -- : ${a}`, 'dockerfile/bad-flag');
    const body = a.slice(2);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const hasValue = eq >= 0;
    const value = eq < 0 ? '' : body.slice(eq + 1);
    const type = Object.prototype.hasOwnProperty.call(spec, name) ? spec[name] : undefined;
    if (type === undefined) {
      const suggestion = didYouMean(name, Object.keys(spec));
      throw new InstructionError(
        `unknown flag: ${name}${suggestion ? ` (did you mean ${suggestion}?)` : ''}`,
        'dockerfile/unknown-flag',
        Object.keys(spec).length > 0 ? `allowed flags: ${Object.keys(spec).map((k) => `--${k}`).join(', ')}` : 'this instruction takes no flags',
      );
    }
    if (values.has(name) && type !== 'strings') throw new InstructionError(`duplicate flag specified: ${name}`, 'dockerfile/duplicate-flag');
    switch (type) {
      case 'bool': {
        if (hasValue && value === '') throw new InstructionError(`missing a value on flag: ${name}`, 'dockerfile/bad-flag');
        const v = value.toLowerCase();
        if (v === 'true' || v === '') values.set(name, 'true');
        else if (v === 'false') values.set(name, 'false');
        else throw new InstructionError(`expecting boolean value for flag ${name}, not: ${value}`, 'dockerfile/bad-flag');
        break;
      }
      case 'string':
        if (!hasValue) throw new InstructionError(`missing a value on flag: ${name}`, 'dockerfile/bad-flag');
        values.set(name, value);
        break;
      case 'strings': {
        if (!hasValue) throw new InstructionError(`missing a value on flag: ${name}`, 'dockerfile/bad-flag');
        const prev = values.get(name);
        values.set(name, [...(Array.isArray(prev) ? prev : []), value]);
        break;
      }
    }
  }
  return new FlagValues(values);
}

/** A class, not closures: this runs for every instruction and closures cost more. */
class FlagValues implements ParsedFlags {
  constructor(private readonly values: Map<string, string | string[]>) {}
  bool(n: string): boolean | undefined {
    const v = this.values.get(n);
    return v === undefined ? undefined : v === 'true';
  }
  string(n: string): string | undefined {
    const v = this.values.get(n);
    return typeof v === 'string' ? v : undefined;
  }
  strings(n: string): string[] {
    const v = this.values.get(n);
    return Array.isArray(v) ? v : [];
  }
}

export function base(node: RawNode): { keyword: string; range: RawNode['range']; original: string; flags: string[] } {
  return { keyword: node.keyword, range: node.range, original: node.original, flags: [...node.flags] };
}

/** BuildKit handleJSONArgs + shell-dependent command line. */
export function commandLine(node: RawNode): CommandLine {
  if (node.json) return { form: 'exec', argv: [...node.args] };
  return { form: 'shell', command: node.args.join(' ') };
}

export function chompHeredoc(content: string): string {
  return content.replace(/^\t+/gm, '');
}

export function heredocSpecs(node: RawNode): HeredocSpec[] {
  return node.heredocs.map((h) => ({
    name: h.name,
    body: h.chomp ? chompHeredoc(h.content) : h.content,
    expand: h.expand,
    chomp: h.chomp,
    fd: h.fd,
  }));
}

export function atLeastOne(node: RawNode): void {
  if (node.args.length === 0) throw new InstructionError(`${node.value.toUpperCase()} requires at least one argument`, 'dockerfile/missing-argument');
}

export function exactlyOne(node: RawNode): string {
  if (node.args.length !== 1) throw new InstructionError(`${node.value.toUpperCase()} requires exactly one argument`, 'dockerfile/missing-argument');
  return node.args[0] as string;
}

/** For instructions that take no flags at all (BuildKit still runs BFlags.Parse on them). */
export function noFlags(node: RawNode): void {
  parseFlags(node.flags, {});
}

const NO_FLAGS: ParsedFlags = new FlagValues(new Map());
