/**
 * `stowage executor`: build one Dockerfile with Kaniko's flag names, so existing pipelines that call
 * `/kaniko/executor --dockerfile … --context … --destination …` can switch by changing the binary.
 *
 * Parsing is pure (`parseExecutorArgs`); the build modules are imported only after the flags are
 * valid, so `--help` and usage errors stay cheap and never touch the filesystem.
 */
import { setMaxListeners } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { dockerConfigPath } from '../registry/auth.js';
import { StowageError } from '../util/errors.js';
import { reportFatal } from './report.js';
import { didYouMean } from '../util/levenshtein.js';
import type { Destination } from '../engine/build-image.js';
import type { TlsTrust } from '../registry/tls-trust.js';
import { proxyConfigFromEnv } from '../registry/proxy.js';
import { parseTtl } from '../cache/entry.js';

export type SnapshotterChoice = 'auto' | 'overlay' | 'walk';
export type IsolationChoice = 'auto' | 'bwrap' | 'chroot' | 'none';

export interface ExecutorOptions {
  dockerfile: string;
  context: string;
  destinations: string[];
  buildArgs: Record<string, string>;
  target?: string;
  noPush: boolean;
  tarPath?: string;
  ociLayoutPath?: string;
  digestFile?: string;
  imageNameWithDigestFile?: string;
  imageNameTagWithDigestFile?: string;
  labels: Record<string, string>;
  reproducible: boolean;
  insecure: boolean;
  insecureRegistries: string[];
  skipTlsVerify: boolean;
  registryMirrors: string[];
  cache: boolean;
  cacheDir?: string;
  cacheRepo?: string;
  cacheTtl?: string;
  snapshotter: SnapshotterChoice;
  singleSnapshot: boolean;
  skipUnusedStages: boolean;
  customPlatform?: string;
  verbosity: string;
  isolation: IsolationChoice;
  /** With --isolation=none: build in `/` even where no container is detected. */
  force: boolean;
  /** With --isolation=none: paths (as the build sees them) neither deleted nor snapshotted. */
  ignorePaths: string[];
  help: boolean;
}

export interface ParsedExecutorArgs {
  options: ExecutorOptions;
  /** Accepted flags that do not change anything yet; printed so nobody relies on them silently. */
  warnings: string[];
}

type FlagKind = 'string' | 'bool' | 'repeat';

interface FlagSpec {
  names: string[];
  kind: FlagKind;
  help: string;
  apply(o: ExecutorOptions, value: string, warn: (msg: string) => void, env: Record<string, string | undefined>): void;
}

function usage(message: string, hint?: string): StowageError {
  return new StowageError('usage/executor', message, hint === undefined ? {} : { hint });
}

function parseBool(flag: string, value: string): boolean {
  switch (value.toLowerCase()) {
    case 'true':
    case '1':
    case '':
      return true;
    case 'false':
    case '0':
      return false;
    default:
      throw usage(`${flag} takes true or false, not ${JSON.stringify(value)}`);
  }
}

function keyValue(flag: string, raw: string, env: Record<string, string | undefined>): [string, string] | undefined {
  const eq = raw.indexOf('=');
  if (eq === 0) throw usage(`${flag} ${JSON.stringify(raw)} has no name before '='`);
  if (eq > 0) return [raw.slice(0, eq), raw.slice(eq + 1)];
  // Kaniko (like docker build): `--build-arg NAME` takes the value from the environment; unset → ignored.
  const fromEnv = env[raw];
  return fromEnv === undefined ? undefined : [raw, fromEnv];
}

const FLAGS: FlagSpec[] = [
  { names: ['--dockerfile', '-f'], kind: 'string', help: 'path to the Dockerfile (default: <context>/Dockerfile)', apply: (o, v) => void (o.dockerfile = v) },
  { names: ['--context', '-c'], kind: 'string', help: 'build context: a directory, dir://<dir> or tar://<file.tar[.gz]>', apply: (o, v) => void (o.context = v) },
  { names: ['--destination', '-d'], kind: 'repeat', help: 'registry ref, oci:<dir>[:tag] or docker-archive:<file>[:ref] (repeatable)', apply: (o, v) => void o.destinations.push(v) },
  {
    names: ['--build-arg'], kind: 'repeat', help: 'K=V, or K to take the value from the environment (repeatable)',
    apply: (o, v, _w, env) => {
      const kv = keyValue('--build-arg', v, env);
      if (kv) o.buildArgs[kv[0]] = kv[1];
    },
  },
  { names: ['--target'], kind: 'string', help: 'stage to build (default: the last one)', apply: (o, v) => void (o.target = v) },
  { names: ['--no-push'], kind: 'bool', help: 'do not push to registries (local destinations are still written)', apply: (o, v) => void (o.noPush = parseBool('--no-push', v)) },
  { names: ['--tar-path'], kind: 'string', help: 'also write a docker-archive tarball here', apply: (o, v) => void (o.tarPath = v) },
  { names: ['--oci-layout-path'], kind: 'string', help: 'also write an OCI image layout here', apply: (o, v) => void (o.ociLayoutPath = v) },
  { names: ['--digest-file'], kind: 'string', help: 'write the image digest to this file', apply: (o, v) => void (o.digestFile = v) },
  { names: ['--image-name-with-digest-file'], kind: 'string', help: 'write <repo>@<digest> per destination', apply: (o, v) => void (o.imageNameWithDigestFile = v) },
  { names: ['--image-name-tag-with-digest-file'], kind: 'string', help: 'write <repo>:<tag>@<digest> per destination', apply: (o, v) => void (o.imageNameTagWithDigestFile = v) },
  {
    names: ['--label'], kind: 'repeat', help: 'K=V label applied last (repeatable)',
    apply: (o, v) => {
      const eq = v.indexOf('=');
      if (eq <= 0) throw usage(`--label ${JSON.stringify(v)} must be KEY=VALUE`);
      o.labels[v.slice(0, eq)] = v.slice(eq + 1);
    },
  },
  { names: ['--reproducible'], kind: 'bool', help: 'clamp timestamps (created, history, layer mtimes) for identical digests', apply: (o, v) => void (o.reproducible = parseBool('--reproducible', v)) },
  { names: ['--insecure'], kind: 'bool', help: 'plain HTTP to the destination registries (use --insecure-registry for others)', apply: (o, v) => void (o.insecure = parseBool('--insecure', v)) },
  { names: ['--insecure-registry'], kind: 'repeat', help: 'host[:port] reached over plain HTTP (repeatable)', apply: (o, v) => void o.insecureRegistries.push(v) },
  {
    names: ['--skip-tls-verify'], kind: 'bool', help: 'accepted; TLS verification is not skipped yet',
    apply: (o, v, warn) => {
      o.skipTlsVerify = parseBool('--skip-tls-verify', v);
      if (o.skipTlsVerify) warn('--skip-tls-verify is accepted but certificates are still verified; use --insecure-registry for plain HTTP');
    },
  },
  { names: ['--registry-mirror'], kind: 'repeat', help: 'pull mirror for docker.io (repeatable)', apply: (o, v) => void o.registryMirrors.push(v) },
  { names: ['--cache'], kind: 'bool', help: 'use the step cache: local index, and the registry cache repo (default false, as in Kaniko)', apply: (o, v) => void (o.cache = parseBool('--cache', v)) },
  { names: ['--cache-dir'], kind: 'string', help: 'stowage cache directory (blobs, unpacked base layers, step cache index)', apply: (o, v) => void (o.cacheDir = v) },
  { names: ['--cache-repo'], kind: 'string', help: 'registry repository for step cache entries (default with --cache: <destination repo>/cache)', apply: (o, v) => void (o.cacheRepo = v) },
  {
    names: ['--cache-ttl'], kind: 'string', help: 'ignore cache entries older than this (e.g. 168h, 7d; default 336h)',
    apply: (o, v) => {
      if (parseTtl(v) === undefined) throw usage(`--cache-ttl must be a duration like 168h or 7d, not ${JSON.stringify(v)}`);
      o.cacheTtl = v;
    },
  },
  {
    names: ['--snapshot-mode'], kind: 'string', help: 'full|redo|time (all mean the walk snapshotter)',
    apply: (o, v) => {
      if (!['full', 'redo', 'time'].includes(v)) throw usage(`--snapshot-mode must be full, redo or time, not ${JSON.stringify(v)}`);
      o.snapshotter = 'walk';
    },
  },
  {
    names: ['--snapshotter'], kind: 'string', help: 'auto|overlay|walk',
    apply: (o, v) => {
      if (v !== 'auto' && v !== 'overlay' && v !== 'walk') throw usage(`--snapshotter must be auto, overlay or walk, not ${JSON.stringify(v)}`);
      o.snapshotter = v;
    },
  },
  {
    names: ['--single-snapshot'], kind: 'bool', help: 'one layer per stage, taken at its last filesystem step (no step cache)',
    apply: (o, v) => void (o.singleSnapshot = parseBool('--single-snapshot', v)),
  },
  // stowage always builds only the stages the target needs (BuildKit's behaviour), so this is a no-op.
  { names: ['--skip-unused-stages'], kind: 'bool', help: 'no-op: only stages the target needs are ever built', apply: (o, v) => void (o.skipUnusedStages = parseBool('--skip-unused-stages', v)) },
  { names: ['--custom-platform'], kind: 'string', help: 'os/arch[/variant] of the image (default: the host)', apply: (o, v) => void (o.customPlatform = v) },
  {
    names: ['--verbosity', '-v'], kind: 'string', help: 'panic|fatal|error|warn|info|debug|trace',
    apply: (o, v) => {
      if (!['panic', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(v)) throw usage(`--verbosity ${JSON.stringify(v)} is not a log level`, 'use one of panic, fatal, error, warn, info, debug, trace');
      o.verbosity = v;
    },
  },
  {
    names: ['--isolation'], kind: 'string',
    help: 'auto|bwrap|chroot|none (how RUN steps are sandboxed). none is Kaniko\'s model: this container\'s own / becomes the build root, ' +
      'emptied and refilled for each stage; steps run with no isolation at all; the container is consumed (one build per container)',
    apply: (o, v) => {
      if (v !== 'auto' && v !== 'bwrap' && v !== 'chroot' && v !== 'none') throw usage(`--isolation must be auto, bwrap, chroot or none, not ${JSON.stringify(v)}`);
      o.isolation = v;
    },
  },
  {
    names: ['--force'], kind: 'bool', help: 'with --isolation=none: build even where no container is detected (it deletes the files of the machine it runs on)',
    apply: (o, v) => void (o.force = parseBool('--force', v)),
  },
  {
    names: ['--ignore-path'], kind: 'repeat', help: 'with --isolation=none: a path that is neither deleted before a stage nor snapshotted (repeatable)',
    apply: (o, v) => {
      if (!v.startsWith('/')) throw usage(`--ignore-path ${JSON.stringify(v)} must be an absolute path`);
      o.ignorePaths.push(v);
    },
  },
  { names: ['--help', '-h'], kind: 'bool', help: 'show this help', apply: (o, v) => void (o.help = parseBool('--help', v)) },
];

export function executorUsage(): string {
  const lines = FLAGS.map((f) => `  ${f.names.join(', ')}${f.kind === 'bool' ? '' : ' <value>'}\n      ${f.help}`);
  return `Usage: stowage executor [flags]\n\nBuilds one Dockerfile; flag names follow Kaniko's executor.\n\nFlags:\n${lines.join('\n')}\n`;
}

export function supportedFlagNames(): string[] {
  return FLAGS.flatMap((f) => f.names);
}

function defaults(): ExecutorOptions {
  return {
    dockerfile: 'Dockerfile',
    context: '.',
    destinations: [],
    buildArgs: {},
    noPush: false,
    labels: {},
    reproducible: false,
    insecure: false,
    insecureRegistries: [],
    skipTlsVerify: false,
    registryMirrors: [],
    cache: false,
    snapshotter: 'auto',
    singleSnapshot: false,
    skipUnusedStages: false,
    verbosity: 'info',
    isolation: 'auto',
    force: false,
    ignorePaths: [],
    help: false,
  };
}

/** Pure: argv → options. Both `--flag=value` and `--flag value`; unknown flags are usage errors. */
export function parseExecutorArgs(argv: readonly string[], env: Record<string, string | undefined> = {}): ParsedExecutorArgs {
  const options = defaults();
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  const byName = new Map<string, FlagSpec>();
  for (const f of FLAGS) for (const n of f.names) byName.set(n, f);
  const seen = new Set<FlagSpec>();

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-') || arg === '-' || arg === '--') {
      throw usage(`unexpected argument ${JSON.stringify(arg)}`, 'stowage executor takes only flags; the context is given with --context');
    }
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const spec = byName.get(name);
    if (!spec) {
      const guess = didYouMean(name, byName.keys());
      throw usage(`unknown flag ${name}`, `${guess ? `did you mean ${guess}? ` : ''}supported flags: ${supportedFlagNames().join(' ')}`);
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (spec.kind === 'bool') {
      // `--no-push false` is not Kaniko's syntax (pflag bools need `=`); a bare bool flag means true.
      value = 'true';
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw usage(`${name} needs a value`, `write ${name}=<value> or ${name} <value>`);
      value = next;
      i++;
    }
    if (spec.kind === 'string' && seen.has(spec) && spec.names[0] !== '--verbosity') {
      throw usage(`${name} given more than once`, `only ${spec.names[0]} flags listed as repeatable may repeat`);
    }
    seen.add(spec);
    spec.apply(options, value, warn, env);
  }
  if (options.singleSnapshot && options.cache) {
    // A step's cache entry is its own layer, and here steps have none: Kaniko's combination would
    // restore a stage without the changes of its cached steps.
    warn('--cache is ignored with --single-snapshot: its steps have no layers of their own to cache');
    options.cache = false;
  }
  return { options, warnings };
}

/** The CLI entry for `stowage executor`: exit 0 on success, 1 on build failure, 2 on usage errors. */
export async function runExecutor(argv: string[], context: { tls?: TlsTrust } = {}): Promise<number> {
  let parsed: ParsedExecutorArgs;
  try {
    parsed = parseExecutorArgs(argv, process.env);
  } catch (e) {
    if (e instanceof StowageError) {
      process.stderr.write(`stowage executor: error: ${e.message}\n`);
      if (e.hint) process.stderr.write(`hint: ${e.hint}\n`);
      return 2;
    }
    throw e;
  }
  if (parsed.options.help) {
    process.stdout.write(executorUsage());
    return 0;
  }
  for (const w of parsed.warnings) process.stderr.write(`stowage executor: warning: ${w}\n`);
  try {
    return await executeBuild(parsed.options, process.env, context.tls);
  } catch (e) {
    return reportFatal(e);
  }
}

/** Where the build context is: a directory, `dir://<dir>`, or `tar://<file>` (extracted to a temp dir). */
export function contextLocation(context: string): { kind: 'dir'; dir: string } | { kind: 'tar'; file: string } {
  if (context.startsWith('dir://')) return { kind: 'dir', dir: context.slice('dir://'.length) };
  if (context.startsWith('tar://')) return { kind: 'tar', file: context.slice('tar://'.length) };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(context);
  if (scheme) {
    throw usage(`build contexts of kind ${scheme[1]}:// are not supported`, 'use a directory, dir://<dir> or tar://<file.tar[.gz]>');
  }
  return { kind: 'dir', dir: context };
}

/**
 * Called when the Dockerfile is not found: a context directory that is missing or empty is then
 * almost always a volume that was not mounted (`docker run -v …:/workspace`, a Kubernetes
 * volume); say that, not "cannot read the Dockerfile". (An empty context with a Dockerfile
 * elsewhere is fine and never gets here.)
 */
export function assertContextPresent(dir: string, given: string): void {
  let entries: string[] | undefined;
  try {
    entries = readdirSync(dir);
  } catch {
    entries = undefined;
  }
  if (entries === undefined || entries.length === 0) {
    throw usage(`the build context ${given} ${entries === undefined ? 'does not exist' : 'is empty'}`, `mount the context there (docker run -v "$PWD":${dir}:ro …, or a volume in the pod spec) or pass --context <dir>`);
  }
}

/**
 * Kaniko's lookup: an absolute --dockerfile as is; a relative one relative to the current
 * directory when it exists there, else relative to the context.
 */
export function dockerfileLocation(dockerfile: string, contextDir: string, exists: (p: string) => boolean): string {
  if (isAbsolute(dockerfile)) return dockerfile;
  if (exists(dockerfile)) return resolve(dockerfile);
  return join(contextDir, dockerfile);
}

async function executeBuild(o: ExecutorOptions, env: Record<string, string | undefined>, tls: TlsTrust | undefined): Promise<number> {
  const proxy = proxyConfigFromEnv(env);
  const registryRefs = o.destinations.filter((d) => !d.startsWith('oci:') && !d.startsWith('docker-archive:'));
  if (o.destinations.length === 0 && !o.noPush && !o.tarPath && !o.ociLayoutPath) {
    throw usage('no destination given', 'pass --destination (a registry ref, oci:<dir> or docker-archive:<file>), or --no-push with --tar-path/--oci-layout-path');
  }
  const [{ buildDockerfile, writeDestinations, createEnginePorts, parseDestination, writeFileAtomic }, { hostPlatform, parsePlatform }, { resolveCacheDir }, { parseReference }] = await Promise.all([
    import('../engine/build-image.js'),
    import('../image/platform.js'),
    import('../store/cache-dir.js'),
    import('../registry/reference.js'),
  ]);
  for (const d of o.destinations) parseDestination(d);
  const controller = new AbortController();
  // Every in-flight registry request, layer unpack and child process listens on this one signal;
  // with concurrent pushes that is legitimately more than Node's default 10, and the
  // MaxListenersExceededWarning it would print is noise in the user's build log.
  setMaxListeners(0, controller.signal);
  const onSignal = (sig: NodeJS.Signals) => controller.abort(new StowageError('build/interrupted', `interrupted by ${sig}; nothing was written to the destinations not yet done`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const loc = contextLocation(o.context);
    const cacheDir = resolveCacheDir({ flag: o.cacheDir, env });
    const { openDirContext, openTarContext } = await import('../engine/context/context.js');
    let context;
    if (loc.kind === 'tar') {
      context = await openTarContext({
        tarPath: resolve(loc.file),
        ...(isAbsolute(o.dockerfile) ? {} : { dockerfileInContext: o.dockerfile }),
        signal: controller.signal,
      });
    } else {
      const dir = resolve(loc.dir);
      const dockerfilePath = dockerfileLocation(o.dockerfile, dir, existsSync);
      if (!existsSync(dockerfilePath)) assertContextPresent(dir, o.context);
      context = await openDirContext({ dir, dockerfilePath, cacheDir, signal: controller.signal });
    }
    const opened = context;
    cleanups.push(() => opened.close());
    const dockerfilePath = loc.kind === 'tar' && !isAbsolute(o.dockerfile) ? join(context.dir, o.dockerfile) : dockerfileLocation(o.dockerfile, context.dir, existsSync);
    const platform = o.customPlatform ? parsePlatform(o.customPlatform) : hostPlatform();
    const epochText = env['SOURCE_DATE_EPOCH'] ?? o.buildArgs['SOURCE_DATE_EPOCH'];
    const sourceDateEpoch = o.reproducible ? Number(epochText ?? 0) : epochText !== undefined ? Number(epochText) : undefined;
    if (sourceDateEpoch !== undefined && !Number.isInteger(sourceDateEpoch)) throw usage(`SOURCE_DATE_EPOCH ${JSON.stringify(epochText)} is not a whole number of seconds`);
    // Kaniko's --insecure is about pushing: the destination registries are spoken to over HTTP.
    const insecureHosts = o.insecure ? registryRefs.map((r) => parseReference(r).registry) : [];
    if (o.isolation !== 'none' && (o.force || o.ignorePaths.length > 0)) {
      process.stderr.write('stowage executor: warning: --force and --ignore-path only matter with --isolation=none\n');
    }
    const ports = await createEnginePorts({
      cacheDir,
      snapshotter: o.snapshotter,
      isolation: o.isolation,
      ...(o.isolation === 'none' ? { isolationNone: isolationNoneOptions(o, { contextDir: context.dir, dockerfilePath, env }) } : {}),
      registry: { insecureRegistries: [...o.insecureRegistries, ...insecureHosts], registryMirrors: [...o.registryMirrors], ...(tls ? { tls } : {}), ...(proxy ? { proxy } : {}) },
      signal: controller.signal,
    });
    cleanups.push(() => ports.close());
    // The build starts while the engine still probes how it may isolate steps. Said once per build,
    // before any line of the build: which sandbox RUN steps get and why (inside a container it is
    // usually chroot, which is not a security boundary — the user must know). A failed probe stops
    // the build and is the error reported, as when nothing had started.
    let heldLines: Array<string | Uint8Array> | undefined = [];
    const log = (text: string | Uint8Array) => (heldLines ? heldLines.push(text) : process.stderr.write(text));
    const probed = ports.probe().then(
      (r) => {
        if (['info', 'debug', 'trace'].includes(o.verbosity)) {
          process.stderr.write(`stowage executor: RUN isolation: ${r.isolation.isolation} (${r.isolation.reason}); snapshotter: ${r.snapshotter}\n`);
        }
        for (const line of heldLines ?? []) process.stderr.write(line);
        heldLines = undefined;
      },
      (e: unknown) => {
        controller.abort(e);
        throw e;
      },
    );
    probed.catch(() => undefined); // awaited with the build below
    const stepCache = o.cache ? await openExecutorStepCache(o, registryRefs, ports) : undefined;
    if (stepCache) {
      cleanups.push(async () => {
        stepCache.cancel(); // only still running after a failure
        await stepCache.flush();
      });
    }
    const verbose = o.verbosity === 'debug' || o.verbosity === 'trace' || o.verbosity === 'info';
    const building = buildDockerfile({
      dockerfilePath,
      context,
      ...(o.target !== undefined ? { target: o.target } : {}),
      buildArgs: o.buildArgs,
      labels: o.labels,
      platform,
      ports: ports.engine,
      options: {
        cacheDir,
        signal: controller.signal,
        ...(tls ? { tls } : {}),
        ...(proxy ? { proxy } : {}),
        ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
        ...(stepCache ? { stepCache } : {}),
        ...(o.singleSnapshot ? { singleSnapshot: true } : {}),
        onEvent: (ev) => {
          if (ev.type === 'warning') {
            const d = ev.diagnostic;
            log(`${d.file ?? ''}${d.range ? `:${d.range.start.line}` : ''}: warning[${d.code}]: ${d.message}\n`);
            return;
          }
          if (!verbose) return;
          if (ev.type === 'step-start') log(`#${ev.stage} ${ev.line}: ${ev.text}\n`);
          else if (ev.type === 'cache-hit') log(`#${ev.stage} ${ev.line}: CACHED (${ev.source})\n`);
          else if (ev.type === 'output') log(ev.chunk);
        },
      },
    });
    const [probe, built] = await Promise.allSettled([probed, building]);
    if (probe.status === 'rejected') throw probe.reason;
    if (built.status === 'rejected') throw built.reason;
    const image = built.value;
    // Entries still being pushed to the cache repo finish before the image is published and we exit.
    await stepCache?.flush();
    const targets: Destination[] = o.destinations.filter((d) => !(o.noPush && registryRefs.includes(d))).map(parseDestination);
    // Kaniko's --tar-path archive carries every registry destination as a tag.
    if (o.tarPath) targets.push({ kind: 'docker-archive', file: o.tarPath, refs: registryRefs, text: `docker-archive:${o.tarPath}` });
    if (o.ociLayoutPath) targets.push(parseDestination(`oci:${o.ociLayoutPath}`));
    const written = await writeDestinations(image, targets, { ...(o.noPush ? {} : { push: ports.push }), signal: controller.signal });
    for (const w of written) process.stdout.write(`${w.destination} ${w.digest}\n`);
    if (written.length === 0) process.stdout.write(`${image.digest}\n`);
    if (o.digestFile) await writeFileAtomic(resolve(o.digestFile), image.digest);
    if (o.imageNameWithDigestFile) {
      await writeFileAtomic(resolve(o.imageNameWithDigestFile), registryRefs.map((r) => `${repositoryOf(r)}@${image.digest}\n`).join(''));
    }
    if (o.imageNameTagWithDigestFile) {
      await writeFileAtomic(resolve(o.imageNameTagWithDigestFile), registryRefs.map((r) => `${r}@${image.digest}\n`).join(''));
    }
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}

/**
 * Kaniko's cache: with --cache, entries go to --cache-repo, else to `<first destination repo>/cache`;
 * --cache-ttl (default 336h) bounds how old an entry may be.
 */
async function openExecutorStepCache(
  o: ExecutorOptions,
  registryRefs: readonly string[],
  ports: { createStepCache(options: { repo?: string; ttlMs?: number; warn(message: string): void }): import('../cache/step-cache.js').StepCache },
) {
  const repo = o.cacheRepo ?? (registryRefs[0] !== undefined && !o.noPush ? `${repositoryOf(registryRefs[0])}/cache` : undefined);
  const ttlMs = parseTtl(o.cacheTtl ?? '336h');
  return ports.createStepCache({
    ...(repo !== undefined ? { repo } : {}),
    ...(ttlMs !== undefined ? { ttlMs } : {}),
    warn: (m) => process.stderr.write(`stowage: warning: ${m}\n`),
  });
}

/**
 * `--isolation=none` builds in this container's `/`: what the build still reads or writes after a
 * stage has emptied it must be kept — the context, the Dockerfile, every output file or dir, and the
 * registry credentials (read when pushing, after the build).
 */
export function isolationNoneOptions(o: ExecutorOptions, where: { contextDir: string; dockerfilePath: string; env: Record<string, string | undefined> }) {
  const outputs = [
    ...o.destinations.filter((d) => d.startsWith('oci:') || d.startsWith('docker-archive:')).map((d) => {
      const rest = d.slice(d.indexOf(':') + 1);
      const i = rest.indexOf(':');
      return i < 0 ? rest : rest.slice(0, i);
    }),
    ...[o.tarPath, o.ociLayoutPath, o.digestFile, o.imageNameWithDigestFile, o.imageNameTagWithDigestFile].filter((p): p is string => p !== undefined),
  ];
  // The directory the registry client will read credentials from after the wipe (HOME unset
  // included: then the user's home from the passwd database, as auth.ts resolves it).
  const dockerConfig = dirname(dockerConfigPath(where.env));
  return {
    buildRoot: '/',
    force: o.force,
    ignorePaths: o.ignorePaths,
    protect: [where.contextDir, where.dockerfilePath, ...outputs, dockerConfig].map((p) => resolve(p)),
    onWarning: (m: string) => process.stderr.write(`stowage executor: warning: ${m}\n`),
  };
}

/** `host/repo:tag` → `host/repo` (a `:` after the last `/` is the tag; a digest is dropped too). */
export function repositoryOf(ref: string): string {
  const noDigest = ref.split('@')[0]!;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}
