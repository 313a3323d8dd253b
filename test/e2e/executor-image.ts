/**
 * Builds stowage's own executor image the way the README says, with no network beyond 127.0.0.1:
 * deploy/offline-base.sh assembles a base from this host's node + busybox and pushes it to the test
 * registry (stowage's FROM pulls from registries only), then deploy/build-executor-image.sh builds
 * deploy/Dockerfile on it with `--build-arg BASE=…` into a docker-archive that `docker load` reads.
 *
 * The image carries the compiled CLI. In CI `npm ci` has just built dist/; when dist/ is older than
 * src/ (a developer's checkout), the current sources are compiled into a temp dir instead, so the
 * test never passes or fails because of a stale build.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const REPO = new URL('../../', import.meta.url).pathname.replace(/\/$/, '');
export const DEPLOY = join(REPO, 'deploy');

/**
 * The capabilities the README documents as enough for `--cap-drop=ALL` containers (chroot
 * isolation, USER steps, ownership and modes as docker would leave them). The k8s example uses
 * the same list; the e2e test proves it builds the same image as docker's default set.
 */
export const MINIMAL_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETUID', 'SETGID', 'SYS_CHROOT'];

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command, collecting its output; never throws for a non-zero exit. */
export function runCommand(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; signal?: AbortSignal; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.stdin.on('error', () => undefined); // EPIPE when the command never reads its input
    child.on('close', (code, sig) => resolve({ code: code ?? (sig ? 128 : -1), stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** Throws with the command's output when it failed. */
export async function mustRun(file: string, args: string[], options: Parameters<typeof runCommand>[2] = {}): Promise<RunResult> {
  const r = await runCommand(file, args, options);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${r.code}\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-1000)}`);
  return r;
}

function newestMtime(dir: string, suffix: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p, suffix));
    else if (e.name.endsWith(suffix)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * dist/ when it is at least as new as every source file; else the sources compiled incrementally
 * into node_modules/.cache/stowage-e2e (so a developer's repeated runs recompile only what changed).
 */
export async function currentDist(signal?: AbortSignal): Promise<string> {
  const main = join(REPO, 'dist', 'cli', 'main.js');
  if (existsSync(main) && statSync(main).mtimeMs >= newestMtime(join(REPO, 'src'), '.ts')) return join(REPO, 'dist');
  const cache = join(REPO, 'node_modules', '.cache', 'stowage-e2e');
  const out = join(cache, 'dist');
  const r = await runCommand(
    process.execPath,
    [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO, 'tsconfig.build.json'), '--outDir', out, '--incremental', '--tsBuildInfoFile', join(cache, 'build.tsbuildinfo')],
    { cwd: REPO, ...(signal ? { signal } : {}) },
  );
  // Type errors elsewhere in a work tree still emit JavaScript (as `npm run build` would); only a
  // compile that produced no CLI is fatal here — type errors are the type-check's business.
  if (!existsSync(join(out, 'cli', 'main.js'))) throw new Error(`compiling the sources failed:\n${r.stdout.slice(-3000)}${r.stderr.slice(-1000)}`);
  return out;
}

export interface ExecutorImage {
  /** The docker-archive written by stowage. */
  archive: string;
  /** The name the archive carries (`docker load` tags it). */
  name: string;
  /** The staged project on the host: `<dir>/bin/stowage` runs the same build as the image. */
  stowage: string;
  /** The environment the deploy scripts ran with (STOWAGE, STOWAGE_DIST, cache dir). */
  env: NodeJS.ProcessEnv;
}

/** Builds the executor image into `<work>/stowage.tar`; `registryHost` is a loopback test registry. */
export async function buildExecutorImage(work: string, registryHost: string, signal?: AbortSignal): Promise<ExecutorImage> {
  const dist = await currentDist(signal);
  const hostStage = join(work, 'host');
  await mustRun(join(DEPLOY, 'stage-project.sh'), [hostStage], { env: { ...process.env, STOWAGE_DIST: dist }, ...(signal ? { signal } : {}) });
  const stowage = join(hostStage, 'stowage', 'bin', 'stowage');
  const env: NodeJS.ProcessEnv = { ...process.env, STOWAGE: stowage, STOWAGE_DIST: dist, STOWAGE_CACHE_DIR: join(work, 'cache'), TMPDIR: work };
  const base = `${registryHost}/stowage/node-base:20`;
  await mustRun(join(DEPLOY, 'offline-base.sh'), [join(work, 'base'), base], { env, ...(signal ? { signal } : {}) });
  const name = 'stowage/executor:e2e';
  const archive = join(work, 'stowage.tar');
  await mustRun(join(DEPLOY, 'build-executor-image.sh'), ['--base', base, '--destination', `docker-archive:${archive}:${name}`, '--verbosity=warn'], { env, ...(signal ? { signal } : {}) });
  return { archive, name, stowage, env };
}

/** Writes `<dir>/stowage`, a launcher running this checkout's sources through tsx (never a stale dist/). */
export function writeSourceLauncher(dir: string): string {
  const file = join(dir, 'stowage');
  const tsx = import.meta.resolve('tsx');
  const main = new URL('../../src/cli/main.ts', import.meta.url).href;
  writeFileSync(
    file,
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --import ${JSON.stringify(tsx)} --input-type=module ` +
      `-e 'const m = await import(${JSON.stringify(main)}); await m.main(process.argv.slice(1));' -- "$@"\n`,
  );
  chmodSync(file, 0o755);
  return file;
}
