// Bundles the compiled CLI (tsc's dist/) with esbuild, run by `npm run build` after tsc and
// gen-validator: dist/cli/main.js becomes the bundle's entry and its chunks (`chunk-*.js`) sit
// beside it, so a command loads a few dozen files of ours instead of ~100. Each dynamic import()
// stays a chunk of its own, loaded only by the path that needs it. The rest of tsc's output stays
// as it was: the chunks are at the same depth below the package root as dist/cli/*.js, so the
// paths modules find relative to themselves (package.json, schema/, dist/spec/'s precompiled
// validator, the install dir) hold. Running tsc again makes dist/cli/main.js tsc's own again:
// never a stale bundle.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

// A compiled tree elsewhere (bench's private build) may be given; default the checkout's dist/.
const dist = process.argv[2] ? resolve(process.argv[2]) : join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const cliDir = join(dist, 'cli');
const main = join(cliDir, 'main.js');
const MARKER = '// stowage: bundled by scripts/bundle.mjs';

if (readFileSync(main, 'utf8').startsWith(MARKER)) {
  process.stderr.write('bundle: dist/cli/main.js is already the bundle; run tsc (npm run build) to make it again\n');
  process.exit(0);
}
// Chunks of an earlier bundle: nothing refers to them any more.
for (const f of readdirSync(cliDir)) if (/^chunk-[A-Z0-9]+\.js$/.test(f)) rmSync(join(cliDir, f));

await build({
  entryPoints: [main],
  outdir: cliDir,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  // Only stowage's own modules: packages are loaded by Node from node_modules exactly as when the
  // tests run the sources (a bundled CommonJS package would lose the named exports Node gives a
  // dynamic import() of it, e.g. `(await import('tar-stream')).extract`).
  packages: 'external',
  banner: { js: MARKER },
  logLevel: 'warning',
});
