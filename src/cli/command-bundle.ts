/**
 * Loads a command's bundle, `dist/cli/<name>.cjs` (written by scripts/bundle.mjs), compiled with the
 * V8 code cache made beside it at build time (`<name>.cjs.v8cache`). Node 20 keeps no compile cache
 * for a program's own modules, and parsing a ~1 MB bundle is ~18 ms of every run; from the cache it
 * is ~3 ms. A cache V8 rejects (another node binary, other V8 flags) only costs that compile: the
 * script is then compiled from its source.
 *
 * Used only by the bundled commands.js; running from sources (tests, tsx), commands.ts imports the
 * command modules directly.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/**
 * The function a bundle's CommonJS source is compiled in (Node's own module wrapper, on the bundle's
 * first line so line numbers hold). scripts/bundle.mjs makes the cache from this same text: V8
 * accepts a cache only for the exact source it was made from.
 */
export const BUNDLE_WRAPPER_HEAD = '(function (exports, require, module, __filename, __dirname) {';
export const BUNDLE_WRAPPER_TAIL = '\n})';

type ModuleWrapper = (exports: object, require: NodeJS.Require, module: { exports: object }, filename: string, dirname: string) => void;

/** The exports of `<dir>/<name>.cjs`. */
export function loadCommandBundle(name: string, dir: string = dirname(fileURLToPath(import.meta.url))): Record<string, unknown> {
  const file = join(dir, `${name}.cjs`);
  const source = BUNDLE_WRAPPER_HEAD + readFileSync(file, 'utf8') + BUNDLE_WRAPPER_TAIL;
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(`${file}.v8cache`);
  } catch {
    // no cache (a build without it): compiled from source
  }
  const script = new Script(source, { filename: file, ...(cachedData ? { cachedData } : {}) });
  const wrapper = script.runInThisContext() as ModuleWrapper;
  const module = { exports: {} as Record<string, unknown> };
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, dir);
  return module.exports;
}
