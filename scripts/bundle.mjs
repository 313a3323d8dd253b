// Bundles the compiled CLI (tsc's dist/) with esbuild, run by `npm run build` after tsc and
// gen-validator. What comes out replaces tsc's files of the same names in dist/cli/:
// - main.js: argument dispatch, --help and --version; commands.js: the command table;
// - one file per command (executor.js, build.js, lint.js, …) with all of stowage's code that command
//   reaches. Dynamic import()s inside stay lazy in what they evaluate (esbuild turns them into init
//   calls) but load no file: an executor run used to load ~65 code-split chunks through Node's ESM
//   loader, each resolved, read and compiled on its own, ~30-40 ms of CPU per run
//   (bench/micro/small-case.ts). A command's file holds only what it reaches, so `lint` and `plan`
//   parse no build code and load no registry client.
// src/util/errors.js stays a file of its own that all of them import, so StowageError is one class:
// main.js reports what a command throws, and `instanceof` must hold across the files.
// The rest of tsc's output stays as it was: the bundles are at the same depth below the package root
// as dist/cli/*.js, so the paths modules find relative to themselves (package.json, schema/,
// dist/spec/'s precompiled validator, the install dir) hold. Running tsc again makes these files
// tsc's own again: never a stale bundle.
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { createRequire } from 'node:module';

// A compiled tree elsewhere (bench's private build) may be given; default the checkout's dist/.
const dist = process.argv[2] ? resolve(process.argv[2]) : join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const cliDir = join(dist, 'cli');
const main = join(cliDir, 'main.js');
const commands = join(cliDir, 'commands.js');
const errors = join(dist, 'util', 'errors.js');
const MARKER = '// stowage: bundled by scripts/bundle.mjs';

if (readFileSync(main, 'utf8').startsWith(MARKER)) {
  process.stderr.write('bundle: dist/cli/main.js is already the bundle; run tsc (npm run build) to make it again\n');
  process.exit(0);
}
// Chunks of an earlier, code-split bundle: nothing refers to them any more.
for (const f of readdirSync(cliDir)) if (/^chunk-[A-Z0-9]+\.js$/.test(f)) rmSync(join(cliDir, f));

/** Imports that stay imports of files, written relative to dist/cli/ where both bundles live. */
const keepAsFiles = (files) => ({
  name: 'keep-as-files',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const target = resolve(args.resolveDir, args.path);
      return files.has(target) ? { path: files.get(target), external: true } : undefined;
    });
  },
});

/**
 * undici's Pool and api-request (src/registry/undici-pool.ts imports them from undici's lib/) are
 * bundled into the command files: loaded by Node they are 24 CommonJS modules, each resolved, read,
 * wrapped and scanned by the CJS-to-ESM lexer on every start — bundled, that is ~10 ms less per run
 * (an import of the two: 30 -> 20 ms). The rest of undici (ADD <url>'s fetch) stays a package.
 * Bundled CommonJS calls `require` for Node's built-ins; the banner gives the ES module one.
 * undici's HTTP/2 client is left out: stowage never sets `allowH2`, so no connection negotiates h2
 * and `connectH2` is never called, but its module loads node:http2 (and with it node:tls) when the
 * pool loads — ~5 ms of CPU in every run that talks to a registry. Should h2 ever be enabled, the
 * stub fails loudly at the first h2 connection instead of silently misbehaving.
 */
const bundleUndiciInternals = {
  name: 'bundle-undici-internals',
  setup(b) {
    b.onLoad({ filter: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client-h2\.js$/ }, () => ({
      contents: "'use strict'\nmodule.exports = function connectH2 () { throw new Error('stowage is bundled without undici\\'s HTTP/2 client (allowH2 is never set)') }\n",
      loader: 'js',
    }));
    // Resolved from this checkout: a private build elsewhere (bench/micro) has no node_modules yet.
    b.onResolve({ filter: /^undici\/lib\// }, (args) => ({ path: createRequire(import.meta.url).resolve(args.path) }));
  },
};
const requireBanner = `${MARKER}\nimport { createRequire as __stowageCreateRequire } from 'node:module';\nconst require = __stowageCreateRequire(import.meta.url);`;

const common = {
  allowOverwrite: true,
  bundle: true,
  splitting: false,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  entryNames: '[name]',
  // Only stowage's own modules: packages are loaded by Node from node_modules exactly as when the
  // tests run the sources (a bundled CommonJS package would lose the named exports Node gives a
  // dynamic import() of it, e.g. `(await import('tar-stream')).extract`).
  packages: 'external',
  banner: { js: MARKER },
  logLevel: 'warning',
};
// The commands are what commands.js imports lazily (`import('./lint.js')` …).
const names = [...readFileSync(commands, 'utf8').matchAll(/import\(["']\.\/([a-z-]+)\.js["']\)/g)].map((m) => m[1]);
if (names.length === 0) throw new Error('bundle: found no command imports in dist/cli/commands.js');
const errorsFile = new Map([[errors, '../util/errors.js']]);
// Everything is built from tsc's own files into a temp dir first (build.js reaches plan.js, which
// must not already be a bundle), then moved into dist/cli/ together.
const out = mkdtempSync(join(dist, '.bundle-'));
try {
  await build({ ...common, banner: { js: requireBanner }, outdir: out, entryPoints: names.map((n) => join(cliDir, `${n}.js`)), plugins: [keepAsFiles(errorsFile), bundleUndiciInternals] });
  const commandFiles = new Map(names.map((n) => [join(cliDir, `${n}.js`), `./${n}.js`]));
  await build({ ...common, outdir: out, entryPoints: [commands], plugins: [keepAsFiles(new Map([...errorsFile, ...commandFiles]))] });
  await build({ ...common, outdir: out, entryPoints: [main], plugins: [keepAsFiles(new Map([...errorsFile, [commands, './commands.js']]))] });
  // main.js last: it marks the whole set as bundled (checked above).
  for (const n of [...names, 'commands', 'main']) renameSync(join(out, `${n}.js`), join(cliDir, `${n}.js`));
} finally {
  rmSync(out, { recursive: true, force: true });
}
