import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { StowageError } from '../util/errors.js';

/**
 * Where stowage keeps its blob store and caches:
 * `--cache-dir` > `STOWAGE_CACHE_DIR` > `$XDG_CACHE_HOME/stowage` > `~/.cache/stowage`.
 * Empty values count as unset; a relative `XDG_CACHE_HOME` is ignored, as the XDG spec says.
 * The result is absolute (relative flag/env values resolve against `cwd`).
 */
export function resolveCacheDir(options: {
  flag?: string | undefined;
  env: Readonly<Record<string, string | undefined>>;
  home?: string;
  cwd?: string;
}): string {
  const cwd = options.cwd ?? process.cwd();
  if (options.flag) return resolve(cwd, options.flag);
  const fromEnv = options.env['STOWAGE_CACHE_DIR'];
  if (fromEnv) return resolve(cwd, fromEnv);
  const xdg = options.env['XDG_CACHE_HOME'];
  if (xdg && isAbsolute(xdg)) return join(xdg, 'stowage');
  const home = options.home ?? options.env['HOME'] ?? homedir();
  if (!home) {
    throw new StowageError('store/no-cache-dir', 'cannot find a cache directory: no home directory', {
      hint: 'pass --cache-dir <dir> or set STOWAGE_CACHE_DIR',
    });
  }
  return join(home, '.cache', 'stowage');
}
