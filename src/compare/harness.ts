/**
 * Builds one Dockerfile with stowage (its CLI, `executor`) and with Buildah 1.28
 * (`buildah --storage-driver vfs bud --isolation chroot`), then compares the flattened filesystems
 * and the config fields. Both builders get the same context, the same build args and the same base
 * image (a registry on 127.0.0.1 is the common ground: Buildah 1.28 cannot `FROM oci:`).
 *
 * A case directory may hold `Dockerfile.buildah`: the same result written with only what Buildah
 * 1.28 understands (it predates COPY --parents/--exclude, symbolic --chmod, …). Buildah then builds
 * that file, the report says so, and the filesystems are still compared — a gap in the peer does
 * not leave the feature unchecked.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostPlatform } from '../image/platform.js';
import type { ContainerConfig } from '../image/types.js';
import { readImageFromLayout } from '../store/oci-layout.js';
import { StowageError } from '../util/errors.js';
import { diffConfigs, diffFilesystems, normalizeConfig, renderReport, type ClassifiedDifference } from './diff.js';
import { classify } from './known.js';
import { flattenImage } from './flatten.js';

export interface CompareEnvironment {
  /** Scratch space for image layouts; each case gets a subdirectory that is removed afterwards. */
  workDir: string;
  /** Buildah's private storage (`--root`, `--runroot`), shared by all cases so base layers are pulled once. */
  buildahRoot: string;
  buildahRunroot: string;
  /** stowage's cache dir, shared by all cases for the same reason. */
  stowageCacheDir: string;
  /** Registries reached over plain HTTP (the local one holding the base image). */
  insecureRegistries: readonly string[];
  /** How to start stowage's CLI; default: `defaultStowageCommand()`. */
  stowageCommand?: readonly string[];
  /** Leave each case's two OCI layouts in workDir (named in the report) for a closer look. */
  keepLayouts?: boolean;
  /** Build args given to both builders (e.g. `BUSYBOX=127.0.0.1:5000/busybox:1`). */
  buildArgs?: Readonly<Record<string, string>>;
  signal: AbortSignal;
}

export interface CompareCase {
  /** Shown in the report and given to known-difference matchers. */
  name: string;
  dockerfile: string;
  contextDir: string;
  /** Buildah builds this instead when set (see the module comment). */
  buildahDockerfile?: string;
  buildArgs?: Readonly<Record<string, string>>;
  target?: string;
}

export interface CompareResult {
  name: string;
  differences: ClassifiedDifference[];
  unexpected: number;
  notes: string[];
  report: string;
}

/** Newest mtime of the files under `dir` (recursive), in ms. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * How to start stowage's CLI: the compiled `bin/stowage` when dist/ is newer than every source
 * file (starting it costs a fraction of compiling through tsx, once per case), else the sources
 * through tsx, so the harness never compares a stale build.
 */
export function defaultStowageCommand(): string[] {
  const srcDir = fileURLToPath(new URL('..', import.meta.url));
  const repo = join(srcDir, '..');
  const distMain = join(repo, 'dist', 'cli', 'main.js');
  if (existsSync(distMain) && existsSync(join(repo, 'bin', 'stowage')) && statSync(distMain).mtimeMs >= newestMtime(join(repo, 'src'))) {
    return [process.execPath, join(repo, 'bin', 'stowage')];
  }
  const mainTs = join(srcDir, 'cli', 'main.ts');
  return [process.execPath, '--import', 'tsx', '--input-type=module', '-e', `import(${JSON.stringify(mainTs)}).then((m) => m.main(process.argv.slice(1)))`, '--'];
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(argv: readonly string[], options: { signal: AbortSignal; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: options.signal,
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: options.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.once('error', reject);
    child.once('close', (code, sig) => resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr }));
  });
}

function buildArgList(args: Readonly<Record<string, string>>): string[] {
  return Object.entries(args).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]);
}

function tail(text: string, lines = 25): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function buildahGlobal(env: CompareEnvironment): string[] {
  return ['buildah', '--root', env.buildahRoot, '--runroot', env.buildahRunroot, '--storage-driver', 'vfs'];
}

/** Builds with stowage into `oci:<dir>:stowage`. */
async function buildWithStowage(c: CompareCase, env: CompareEnvironment, layoutDir: string): Promise<void> {
  const argv = [
    ...(env.stowageCommand ?? defaultStowageCommand()),
    'executor',
    '--dockerfile', c.dockerfile,
    '--context', c.contextDir,
    '--destination', `oci:${layoutDir}:stowage`,
    '--cache-dir', env.stowageCacheDir,
    ...env.insecureRegistries.flatMap((r) => ['--insecure-registry', r]),
    ...buildArgList({ ...env.buildArgs, ...c.buildArgs }),
    ...(c.target !== undefined ? ['--target', c.target] : []),
  ];
  const r = await run(argv, { signal: env.signal });
  if (r.code !== 0) throw new StowageError('compare/stowage-failed', `stowage could not build ${c.name} (exit ${r.code}):\n${tail(r.stderr + r.stdout)}`);
}

/** Builds with Buildah (Docker format, so HEALTHCHECK/ONBUILD/SHELL are kept), exports `oci:<dir>:buildah`, returns its config. */
async function buildWithBuildah(c: CompareCase, env: CompareEnvironment, layoutDir: string): Promise<ContainerConfig | undefined> {
  const tag = `localhost/stowage-compare/${c.name.toLowerCase().replace(/[^a-z0-9._-]/g, '-')}:latest`;
  const buildahEnv = { ...process.env, BUILDAH_ISOLATION: 'chroot', STORAGE_DRIVER: 'vfs' };
  const bud = await run(
    [
      ...buildahGlobal(env),
      'bud',
      '--isolation', 'chroot',
      // No --layers: committing an image per step costs a full vfs copy each, and only the final
      // filesystem is compared.
      '--format', 'docker',
      '--tls-verify=false',
      '--file', c.buildahDockerfile ?? c.dockerfile,
      '--tag', tag,
      ...buildArgList({ ...env.buildArgs, ...c.buildArgs }),
      ...(c.target !== undefined ? ['--target', c.target] : []),
      c.contextDir,
    ],
    { signal: env.signal, env: buildahEnv },
  );
  if (bud.code !== 0) throw new StowageError('compare/buildah-failed', `buildah could not build ${c.name} (exit ${bud.code}):\n${tail(bud.stderr + bud.stdout)}`);
  const push = await run([...buildahGlobal(env), 'push', tag, `oci:${layoutDir}:buildah`], { signal: env.signal, env: buildahEnv });
  if (push.code !== 0) throw new StowageError('compare/buildah-failed', `buildah push of ${c.name} failed:\n${tail(push.stderr)}`);
  // The OCI config Buildah pushes drops Docker-only fields (Healthcheck, OnBuild, Shell); inspect keeps them.
  const inspect = await run([...buildahGlobal(env), 'inspect', '--type', 'image', tag], { signal: env.signal, env: buildahEnv });
  if (inspect.code !== 0) throw new StowageError('compare/buildah-failed', `buildah inspect of ${c.name} failed:\n${tail(inspect.stderr)}`);
  const parsed = JSON.parse(inspect.stdout) as { Docker?: { config?: ContainerConfig } };
  await run([...buildahGlobal(env), 'rmi', tag], { signal: env.signal, env: buildahEnv });
  return parsed.Docker?.config;
}

/** Builds `c` with both builders and compares. Build failures are thrown (they are not differences). */
export async function compareCase(c: CompareCase, env: CompareEnvironment): Promise<CompareResult> {
  const caseDir = join(env.workDir, `case-${c.name.replace(/[^A-Za-z0-9._-]/g, '_')}-${process.pid}-${Date.now()}`);
  await mkdir(caseDir, { recursive: true });
  try {
    const stowageLayout = join(caseDir, 'stowage');
    const buildahLayout = join(caseDir, 'buildah');
    // Sequential on purpose: both are CPU-bound and the machine is small.
    const t0 = performance.now();
    await buildWithStowage(c, env, stowageLayout);
    const t1 = performance.now();
    const buildahConfig = await buildWithBuildah(c, env, buildahLayout);
    const t2 = performance.now();
    const platform = hostPlatform();
    const stowageImage = await readImageFromLayout(stowageLayout, { tag: 'stowage', platform, signal: env.signal });
    const buildahImage = await readImageFromLayout(buildahLayout, { tag: 'buildah', platform, signal: env.signal });
    const [sfs, bfs] = [await flattenImage(stowageImage, env.signal), await flattenImage(buildahImage, env.signal)];
    const stowageConfig = normalizeConfig(stowageImage.config.config);
    const normalizedBuildah = normalizeConfig(buildahConfig);
    const differences = [...diffFilesystems(sfs, bfs), ...diffConfigs(stowageConfig, normalizedBuildah)];
    const dockerfileText = await readFile(c.dockerfile, 'utf8');
    const classified = classify(differences, { caseName: c.name, dockerfile: dockerfileText, stowageConfig, buildahConfig: normalizedBuildah });
    const notes: string[] = [`${sfs.length} stowage / ${bfs.length} buildah filesystem entries compared`, `build time: stowage ${((t1 - t0) / 1000).toFixed(1)}s, buildah ${((t2 - t1) / 1000).toFixed(1)}s (bud+push+inspect)`];
    if (c.buildahDockerfile !== undefined) notes.push(`buildah built ${c.buildahDockerfile} (the same result without features Buildah 1.28 lacks)`);
    if (env.keepLayouts === true) notes.push(`layouts kept: oci:${stowageLayout}:stowage oci:${buildahLayout}:buildah`);
    const unexpected = classified.filter((d) => d.known === undefined).length;
    return { name: c.name, differences: classified, unexpected, notes, report: renderReport(c.name, classified, notes) };
  } finally {
    if (env.keepLayouts !== true) await rm(caseDir, { recursive: true, force: true });
  }
}

/**
 * A fixture directory: `Dockerfile`, optional `Dockerfile.buildah`, optional `build-args` (K=V
 * lines), optional `target` (the stage name), context = `context/` or the dir.
 */
export async function caseFromDirectory(dir: string): Promise<CompareCase> {
  const abs = resolvePath(dir);
  const name = abs.slice(abs.lastIndexOf('/') + 1);
  const buildArgs: Record<string, string> = {};
  const argsFile = join(abs, 'build-args');
  if (existsSync(argsFile)) {
    for (const line of (await readFile(argsFile, 'utf8')).split('\n')) {
      const t = line.trim();
      if (t === '' || t.startsWith('#')) continue;
      const i = t.indexOf('=');
      buildArgs[i < 0 ? t : t.slice(0, i)] = i < 0 ? '' : t.slice(i + 1);
    }
  }
  const contextDir = existsSync(join(abs, 'context')) ? join(abs, 'context') : abs;
  const targetFile = join(abs, 'target');
  const target = existsSync(targetFile) ? (await readFile(targetFile, 'utf8')).trim() : '';
  return {
    name,
    dockerfile: join(abs, 'Dockerfile'),
    contextDir,
    ...(existsSync(join(abs, 'Dockerfile.buildah')) ? { buildahDockerfile: join(abs, 'Dockerfile.buildah') } : {}),
    buildArgs,
    ...(target !== '' ? { target } : {}),
  };
}
