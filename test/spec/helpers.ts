import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Diagnostic } from '../../src/util/errors.js';
import { loadSpec, type LoadSpecOptions } from '../../src/spec/load.js';
import type { LoadResult } from '../../src/spec/types.js';
import { createSpecValidator } from '../../src/spec/schema.js';

/** Compiled once per test file: compiling the schema costs far more than loading a spec. */
export const validator = createSpecValidator();

export interface Workspace {
  dir: string;
  write(rel: string, text: string): string;
  /** Writes `stowage.yaml` and loads it with cwd = the workspace. */
  load(yaml: string, options?: LoadSpecOptions): Promise<LoadResult>;
  cleanup(): void;
}

export function workspace(files: Record<string, string> = { 'Dockerfile': 'FROM scratch\n' }): Workspace {
  const dir = mkdtempSync(join(tmpdir(), 'stowage-spec-'));
  const write = (rel: string, text: string) => {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
    return p;
  };
  for (const [rel, text] of Object.entries(files)) write(rel, text);
  return {
    dir,
    write,
    load: (yaml, options = {}) => {
      write('stowage.yaml', yaml);
      return loadSpec(join(dir, 'stowage.yaml'), { cwd: dir, validator, ...options });
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** 1-based line/column of the nth occurrence of `needle` in `text`. */
export function posOf(text: string, needle: string, nth = 0): { line: number; column: number } {
  let at = -1;
  for (let i = 0; i <= nth; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`'${needle}' not found`);
  }
  const before = text.slice(0, at).split('\n');
  return { line: before.length, column: before[before.length - 1]!.length + 1 };
}

export function at(d: Diagnostic | undefined): string {
  return d?.range ? `${d.range.start.line}:${d.range.start.column}` : 'none';
}

export function find(diags: Diagnostic[], code: string, contains = ''): Diagnostic | undefined {
  return diags.find((d) => d.code === code && d.message.includes(contains));
}

export function summary(diags: Diagnostic[]): string {
  return diags.map((d) => `${at(d)} ${d.severity} ${d.code} ${d.message}${d.hint ? ` (${d.hint})` : ''}`).join('\n');
}
