/**
 * `npm run compare -- <Dockerfile> [<context>] [--build-arg K=V]... [--target T]`
 * `npm run compare -- <case-dir>...`   (a dir with Dockerfile, optional Dockerfile.buildah, build-args, context/)
 * `npm run compare -- --cases <dir>`   (every subdirectory of <dir> that holds a Dockerfile)
 * `--keep <dir>` leaves both images of every case there as OCI layouts.
 *
 * Builds each Dockerfile with stowage and with Buildah 1.28 and prints, per Dockerfile, `identical`
 * or the differences between the flattened filesystems and the config fields, each marked
 * `known: <reason>` or `UNEXPECTED`. Exit status 1 when anything is unexpected or a build failed.
 *
 * Both builders share a base image: a busybox-static image that stowage builds itself, pushed to a
 * private registry on 127.0.0.1 and passed as `--build-arg BUSYBOX=<ref>` (so `ARG BUSYBOX` +
 * `FROM $BUSYBOX` gives a base with a shell and /etc/passwd with `app` 1000:1000).
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath, dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { busyboxLayout } from '../test/helpers/busybox-image.js';
import { startRegistry, type TestRegistry } from '../test/helpers/registry.js';
import { caseFromDirectory, compareCase, type CompareCase, type CompareEnvironment, type CompareResult } from '../src/compare/harness.js';
import { errorMessage } from '../src/util/errors.js';

const execFileAsync = promisify(execFile);

export interface OpenedCompareEnvironment {
  env: CompareEnvironment;
  /** `127.0.0.1:PORT/busybox:1` */
  busyboxRef: string;
  close(): Promise<void>;
}

/** One registry, one busybox base, one Buildah root and one stowage cache for every case. */
export async function openCompareEnvironment(signal: AbortSignal): Promise<OpenedCompareEnvironment> {
  const root = await mkdtemp(join(tmpdir(), 'stowage-compare-'));
  let registry: TestRegistry | undefined;
  try {
    const [layout, reg] = await Promise.all([busyboxLayout(), startRegistry()]);
    registry = reg;
    const busyboxRef = `${reg.host}/busybox:1`;
    await execFileAsync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout.dir}:${layout.tag}`, `docker://${busyboxRef}`], { signal });
    for (const d of ['work', 'buildah-root', 'buildah-runroot', 'stowage-cache']) await mkdir(join(root, d));
    const env: CompareEnvironment = {
      workDir: join(root, 'work'),
      buildahRoot: join(root, 'buildah-root'),
      buildahRunroot: join(root, 'buildah-runroot'),
      stowageCacheDir: join(root, 'stowage-cache'),
      insecureRegistries: [reg.host],
      buildArgs: { BUSYBOX: busyboxRef },
      signal,
    };
    return {
      env,
      busyboxRef,
      close: async () => {
        await registry?.stop();
        await rm(root, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await registry?.stop();
    await rm(root, { recursive: true, force: true });
    throw e;
  }
}

/** Case directories under `dir`, sorted. */
export function listCaseDirs(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => statSync(join(dir, n)).isDirectory() && existsSync(join(dir, n, 'Dockerfile')))
    .sort()
    .map((n) => join(dir, n));
}

interface CliArgs {
  cases: CompareCase[];
  /** `--keep DIR`: the layouts are written under DIR and left there. */
  keepDir?: string;
}

async function parseArgs(argv: string[]): Promise<CliArgs> {
  const positional: string[] = [];
  const buildArgs: Record<string, string> = {};
  let target: string | undefined;
  let casesDir: string | undefined;
  let keepDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const eq = a.indexOf('=');
      if (eq >= 0) return a.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--build-arg' || a.startsWith('--build-arg=')) {
      const kv = value();
      const eq = kv.indexOf('=');
      buildArgs[eq < 0 ? kv : kv.slice(0, eq)] = eq < 0 ? (process.env[kv] ?? '') : kv.slice(eq + 1);
    } else if (a === '--target' || a.startsWith('--target=')) target = value();
    else if (a === '--cases' || a.startsWith('--cases=')) casesDir = value();
    else if (a === '--keep' || a.startsWith('--keep=')) keepDir = resolvePath(value());
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else positional.push(a);
  }
  const keep = keepDir !== undefined ? { keepDir } : {};
  if (casesDir !== undefined) return { cases: await Promise.all(listCaseDirs(casesDir).map((d) => caseFromDirectory(d))), ...keep };
  if (positional.length === 0) throw new Error('usage: npm run compare -- <Dockerfile> [<context>] | <case-dir>... [--build-arg K=V] [--target T] | --cases <dir>');
  const first = resolvePath(positional[0]!);
  for (const p of positional) if (!existsSync(p)) throw new Error(`${p}: no such Dockerfile, context or case directory`);
  if (positional.every((p) => existsSync(join(p, 'Dockerfile')))) {
    // One or more case directories.
    const cases = await Promise.all(positional.map((p) => caseFromDirectory(p)));
    return { cases: cases.map((c) => ({ ...c, buildArgs: { ...c.buildArgs, ...buildArgs }, ...(target !== undefined ? { target } : {}) })), ...keep };
  }
  const contextDir = resolvePath(positional[1] ?? dirname(first));
  const buildahAlt = `${first}.buildah`;
  return {
    cases: [
      {
        name: contextDir.slice(contextDir.lastIndexOf('/') + 1) || 'context',
        dockerfile: first,
        contextDir,
        ...(existsSync(buildahAlt) ? { buildahDockerfile: buildahAlt } : {}),
        buildArgs,
        ...(target !== undefined ? { target } : {}),
      },
    ],
    ...keep,
  };
}

export async function runCompare(argv: string[], out: (s: string) => void): Promise<number> {
  const ac = new AbortController();
  const onSignal = () => ac.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let opened: OpenedCompareEnvironment | undefined;
  try {
    const { cases, keepDir } = await parseArgs(argv);
    opened = await openCompareEnvironment(ac.signal);
    const env = keepDir !== undefined ? { ...opened.env, workDir: keepDir, keepLayouts: true } : opened.env;
    if (keepDir !== undefined) await mkdir(keepDir, { recursive: true });
    let failed = 0;
    const results: CompareResult[] = [];
    for (const c of cases) {
      try {
        const r = await compareCase(c, env);
        results.push(r);
        out(r.report);
        if (r.unexpected > 0) failed++;
      } catch (e) {
        failed++;
        out(`== ${c.name}\n   FAILED  ${errorMessage(e).split('\n').join('\n   ')}\n`);
      }
    }
    const known = results.reduce((n, r) => n + r.differences.length - r.unexpected, 0);
    out(`\n${cases.length} Dockerfile(s): ${cases.length - failed} without unexpected differences, ${failed} with; ${known} known difference(s) listed\n`);
    return failed > 0 ? 1 : 0;
  } catch (e) {
    out(`compare: error: ${errorMessage(e)}\n`);
    return 2;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await opened?.close();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolvePath(process.argv[1])).href) {
  process.exitCode = await runCompare(process.argv.slice(2), (s) => process.stdout.write(s));
}
