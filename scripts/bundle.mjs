// Bundles the compiled CLI (tsc's dist/) with esbuild, run by `npm run build` after tsc and
// gen-validator. What comes out in dist/cli/:
// - main.cjs: argument dispatch, --help, --version and the command table, one CommonJS file that
//   bin/stowage (CommonJS too, through bin/package.json) requires: a run that loads no ES module
//   never starts Node's ESM loader — `stowage --version` 48 -> 34 ms, a warm rebuild ~12 ms less;
// - one CommonJS file per command (executor.cjs, build.cjs, lint.cjs, …) with all of stowage's code
//   that command reaches, and beside each its V8 code cache (<name>.cjs.v8cache). main.cjs loads
//   them through src/cli/command-bundle.ts, which compiles them with that cache: Node 20 caches no
//   compiled code of a program's own modules, and parsing a ~1 MB bundle was ~18 ms of every run
//   (from the cache: ~3 ms). CommonJS because only vm.Script takes a code cache without V8 flags
//   (and any V8 flag costs Node's own built-ins their code cache, see bin/stowage).
//   Dynamic import()s inside stay lazy in what they evaluate (esbuild turns them into init calls)
//   but load no file: an executor run used to load ~65 code-split chunks through Node's ESM loader,
//   each resolved, read and compiled on its own, ~30-40 ms of CPU per run
//   (bench/micro/small-case.ts). A command's file holds only what it reaches, so `lint` and `plan`
//   parse no build code and load no registry client.
// - errors.cjs: src/util/errors.js as a file of its own that all of them load, so StowageError is one
//   class: main.js reports what a command throws, and `instanceof` must hold across the files.
// The rest of tsc's output stays as it was (main.js and commands.js too, unused by the launcher):
// the bundles are at the same depth below the package root as dist/cli/*.js, so the paths modules
// find relative to themselves (package.json, schema/, dist/spec/'s precompiled validator, the install
// dir) hold.
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';
import { build } from 'esbuild';

// A compiled tree elsewhere (bench's private build) may be given; default the checkout's dist/.
const dist = process.argv[2] ? resolve(process.argv[2]) : join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const cliDir = join(dist, 'cli');
const main = join(cliDir, 'main.js');
const commands = join(cliDir, 'commands.js');
const errors = join(dist, 'util', 'errors.js');
const MARKER = '// stowage: bundled by scripts/bundle.mjs';

if (readFileSync(main, 'utf8').startsWith(MARKER)) {
  // An older layout replaced tsc's main.js by its bundle: it cannot be bundled again.
  process.stderr.write('bundle: dist/cli/main.js is a bundle, not tsc output; run tsc (npm run build) to make it again\n');
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
 * undici's HTTP/2 client is left out: stowage never sets `allowH2`, so no connection negotiates h2
 * and `connectH2` is never called, but its module loads node:http2 (and with it node:tls) when the
 * pool loads — ~5 ms of CPU in every run that talks to a registry. Should h2 ever be enabled, the
 * stub fails loudly at the first h2 connection instead of silently misbehaving.
 * Two of Node's built-ins undici loads are replaced for its files only, because the launcher's V8
 * flag makes every built-in compile from source (bin/stowage): node:assert, which undici calls only
 * as `assert(value)` for internal sanity checks, and node:http, of which it reads only
 * `maxHeaderSize` (the pools set it explicitly: src/registry/client.ts) — ~6 ms of every
 * registry-using run. stowage's own code uses neither.
 */
const bundleUndiciInternals = {
  name: 'bundle-undici-internals',
  setup(b) {
    b.onLoad({ filter: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client-h2\.js$/ }, () => ({
      contents: "'use strict'\nmodule.exports = function connectH2 () { throw new Error('stowage is bundled without undici\\'s HTTP/2 client (allowH2 is never set)') }\n",
      loader: 'js',
    }));
    b.onResolve({ filter: /^node:(assert|http)$/ }, (args) =>
      /[\\/]node_modules[\\/]undici[\\/]/.test(args.importer) ? { path: args.path.slice(5), namespace: 'undici-builtin-stand-in' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'undici-builtin-stand-in' }, (args) => ({
      contents:
        args.path === 'assert'
          ? "'use strict'\nmodule.exports = function assert (value, message) {\n  if (!value) { const e = new Error(message || 'undici: internal assertion failed'); e.code = 'ERR_ASSERTION'; throw e }\n}\n"
          : "'use strict'\n// Node's default (--max-http-header-size); stowage's pools pass maxHeaderSize explicitly anyway.\nmodule.exports = { maxHeaderSize: 16384 }\n",
      loader: 'js',
    }));
    // Resolved from this checkout: a private build elsewhere (bench/micro) has no node_modules yet.
    b.onResolve({ filter: /^undici\/lib\// }, (args) => ({ path: createRequire(import.meta.url).resolve(args.path) }));
  },
};
/**
 * Packages that ship only ES modules (p-limit and its queue) cannot be required by a CommonJS bundle
 * on every Node 20: they are bundled into it instead of loaded from node_modules.
 */
const bundleEsmOnlyPackages = {
  name: 'bundle-esm-only-packages',
  setup(b) {
    b.onResolve({ filter: /^(p-limit|yocto-queue)$/ }, (args) => ({ path: createRequire(join(dirname(fileURLToPath(import.meta.url)), '..', 'package.json')).resolve(args.path) }));
  },
};

/**
 * Modules that only some runs need, imported dynamically where they are used: each gets a bundle of
 * its own (with its code cache) instead of being inlined into every command that reaches it, so
 * the others neither evaluate nor deserialize it. `plan --resolve`'s registry client would
 * otherwise have grown plan's code cache from 0.44 to 1.17 MB (~50 ms per plan); undici's proxy
 * agent is ~65 KB that runs without a proxy never use.
 */
const SPLIT = [
  { name: 'plan-resolve', file: join(cliDir, 'plan-resolve.js') },
  { name: 'proxy-agent', file: join(dist, 'registry', 'proxy-agent.js') },
];

/**
 * An import of one of `bundles` (name → the dist file it is built from) becomes a load of that
 * bundle with its code cache, through the loader in src/cli/command-bundle.ts — lazily where the
 * import is dynamic. Used for commands.js's command table (in main.cjs) and for SPLIT modules.
 */
const bundleLoads = (bundles, loaderFile) => ({
  name: 'bundle-loads',
  setup(b) {
    const byPath = new Map(bundles.map((x) => [x.file, x.name]));
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      if (args.kind === 'entry-point') return undefined;
      const name = byPath.get(resolve(args.resolveDir, args.path));
      return name === undefined ? undefined : { path: name, namespace: 'stowage-bundle-load' };
    });
    b.onLoad({ filter: /.*/, namespace: 'stowage-bundle-load' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(loaderFile)}).loadCommandBundle(${JSON.stringify(args.path)});\n`,
      loader: 'js',
      resolveDir: cliDir,
    }));
  },
});

const common = {
  allowOverwrite: true,
  bundle: true,
  splitting: false,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  entryNames: '[name]',
  // Only stowage's own modules (and the few package files named above): packages are loaded by Node
  // from node_modules exactly as when the tests run the sources.
  packages: 'external',
  banner: { js: MARKER },
  logLevel: 'warning',
};
// The commands are what commands.js imports lazily (`import('./lint.js')` …).
const names = [...readFileSync(commands, 'utf8').matchAll(/import\(["']\.\/([a-z-]+)\.js["']\)/g)].map((m) => m[1]);
if (names.length === 0) throw new Error('bundle: found no command imports in dist/cli/commands.js');
/** The node flags on bin/stowage's shebang line (`… node --flag …`). */
function launcherNodeFlags() {
  const first = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'stowage'), 'utf8').split('\n', 1)[0];
  const m = /^#!.*\bnode((?:\s+\S+)*)\s*$/.exec(first);
  if (!m) throw new Error(`bundle: cannot read the node flags of bin/stowage's first line: ${first}`);
  return m[1].split(/\s+/).filter((f) => f !== '');
}

const loaderFile = join(cliDir, 'command-bundle.js');
const { BUNDLE_WRAPPER_HEAD, BUNDLE_WRAPPER_TAIL } = await import(pathToFileURL(loaderFile).href);
// Everything is built from tsc's own files into a temp dir first (build.js reaches plan.js, which
// must not already be a bundle), then moved into dist/cli/ together.
const out = mkdtempSync(join(dist, '.bundle-'));
try {
  await build({ ...common, format: 'cjs', outExtension: { '.js': '.cjs' }, outdir: out, entryPoints: [errors] });
  const errorsCjs = new Map([[errors, './errors.cjs']]);
  const commonJs = {
    ...common,
    format: 'cjs',
    outExtension: { '.js': '.cjs' },
    // Modules find files relative to themselves through import.meta.url; a CommonJS file has none.
    banner: { js: `${MARKER}\nconst __stowageModuleUrl = require('node:url').pathToFileURL(__filename).href;` },
    define: { 'import.meta.url': '__stowageModuleUrl' },
    // import() of a package or built-in becomes require(): vm.Script has no loader for import().
    supported: { 'dynamic-import': false },
    outdir: out,
  };
  await build({
    ...commonJs,
    entryPoints: [...names.map((n) => join(cliDir, `${n}.js`)), ...SPLIT.map((x) => x.file)],
    plugins: [keepAsFiles(errorsCjs), bundleLoads(SPLIT, loaderFile), bundleUndiciInternals, bundleEsmOnlyPackages],
  });
  const bundled = [...names, ...SPLIT.map((x) => x.name)];
  // A cache records the V8 flags it was made under and is rejected under others: it is made under
  // the launcher's (bin/stowage's shebang). It holds every function compiled, not only the top
  // level V8 compiles at first: --no-lazy while compiling, put back before the cache is made. A
  // cache of the top level alone saved ~15 ms per run; of everything, ~25 ms more in the small case
  // (it costs ~1.5 MB of cache file per big command and ~1.5 MiB of RSS).
  for (const flag of launcherNodeFlags()) setFlagsFromString(flag);
  for (const n of bundled) {
    const file = join(out, `${n}.cjs`);
    setFlagsFromString('--no-lazy');
    // Under the name it is loaded by: code from the cache keeps it (in stack traces and profiles).
    const script = new Script(BUNDLE_WRAPPER_HEAD + readFileSync(file, 'utf8') + BUNDLE_WRAPPER_TAIL, { filename: join(cliDir, `${n}.cjs`) });
    setFlagsFromString('--lazy');
    writeFileSync(`${file}.v8cache`, script.createCachedData());
  }
  // main.cjs: main.js with the command table (commands.js) and the bundle loader inlined; each
  // command's import becomes a load of its bundle with the code cache.
  await build({
    ...commonJs,
    entryPoints: [main],
    plugins: [keepAsFiles(errorsCjs), bundleLoads(names.map((n) => ({ name: n, file: join(cliDir, `${n}.js`) })), loaderFile)],
  });
  // main.cjs last: the launcher needs it, and it needs everything else.
  for (const n of bundled) for (const ext of ['.cjs', '.cjs.v8cache']) renameSync(join(out, `${n}${ext}`), join(cliDir, `${n}${ext}`));
  renameSync(join(out, 'errors.cjs'), join(cliDir, 'errors.cjs'));
  renameSync(join(out, 'main.cjs'), join(cliDir, 'main.cjs'));
} finally {
  rmSync(out, { recursive: true, force: true });
}
