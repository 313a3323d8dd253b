/**
 * `stowage build [images|groups|globs…]`: builds the compiled graph in parallel and writes every
 * image's destinations. Images that build FROM another image of the spec get it directly from
 * this run (no push/pull round trip). Pushes share one Pusher, so each blob crosses the wire once
 * per registry and other repositories get it by cross-repository mount.
 *
 * Exit codes: 0 all succeeded, 1 some image failed, 2 usage or spec errors.
 */
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import pLimit from 'p-limit';
import type { Image } from '../image/blob.js';
import type { BuildEvent, SecretsProvider } from '../engine/instructions/types.js';
import { specImageResolver } from '../graph/compile.js';
import { runGraph, type Job } from '../graph/scheduler.js';
import type { Destination as SpecDestination, SpecImage } from '../spec/types.js';
import { StowageError, errorMessage, isAbortError, isStowageError } from '../util/errors.js';
import { oneOf, parseCommandArgs, parseKeyValues } from './args.js';
import { renderHuman } from './diagnostics-output.js';
import { computePlan } from './plan.js';
import { displayPath } from './project.js';
import { chooseProgressMode, createProgress, type ImageStatus, type SummaryRow } from './progress.js';
import { packageVersion } from './version.js';
import type { BuildContext } from '../engine/context/context.js';
import type { TlsTrust } from '../registry/tls-trust.js';
import { proxyConfigFromEnv } from '../registry/proxy.js';

export const BUILD_USAGE = `Usage: stowage build [options] [IMAGE|GROUP|GLOB ...]

Builds the images of a spec (all of them, or the named images, groups or globs and what they
depend on) and writes their destinations.

Options:
  -f, --file PATH            the spec (default ./stowage.yaml)
      --var K=V              override a spec variable (repeatable; also STOWAGE_VAR_K)
  -j, --jobs N               images built at once (default: spec execution.jobs, else CPU count)
      --keep-going           build everything that does not depend on a failure (execution.failure)
      --fail-fast            stop at the first failure (the default)
      --publish MODE         immediate | after-all: with after-all nothing is written to any
                             destination unless every selected image built (execution.publish)
      --no-push              skip registry destinations (oci: and docker-archive: are still written)
      --metadata-file F      write per-image results and push totals as JSON to F
      --progress MODE        auto (default) | tty | plain | json
      --cache-dir DIR        local store (default $STOWAGE_CACHE_DIR, $XDG_CACHE_HOME/stowage)
      --no-cache             run every step (the step cache is neither read nor written)
      --cache-repo REPO      registry repository shared as step cache (spec cache.repo)
      --cache-ttl DURATION   ignore cache entries older than this, e.g. 168h, 7d (spec cache.ttl)
      --insecure-registry H  talk plain HTTP to host[:port] (repeatable; localhost is implied)
      --registry-mirror H    pull docker.io images through this mirror (repeatable)
      --push-jobs N          concurrent blob transfers per registry (default 8)
      --secret SPEC          id=ID,src=PATH or id=ID,env=NAME (repeatable; adds to spec secrets)
      --snapshotter S        auto | overlay | walk
      --isolation I          auto | bwrap | chroot | none
      --reproducible         clamp timestamps (SOURCE_DATE_EPOCH, default 0) for byte-identical images
  -h, --help                 this help
`;

export interface ImageRecord {
  status: ImageStatus;
  destinations: string[];
  published: boolean;
  digest?: string;
  size?: number;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  error?: string;
  blockedBy?: string;
  /** Steps restored from the step cache instead of running. */
  cacheHits?: number;
  /** Unchanged since a build this cache remembers: the image was reused, nothing ran or was assembled. */
  reused?: boolean;
}

export interface BuildMetadata {
  version: 1;
  status: 'succeeded' | 'failed';
  images: Record<string, ImageRecord>;
  push: Record<string, unknown>;
}

function parseSecretFlag(text: string): { id: string; source: { env: string } | { file: string } } {
  const fields = Object.fromEntries(
    text.split(',').map((kv) => {
      const eq = kv.indexOf('=');
      return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
    }),
  );
  const id = fields['id'];
  const src = fields['src'] ?? fields['source'];
  const env = fields['env'];
  if (!id || (!src && !env)) {
    throw new StowageError('usage/bad-flag', `--secret ${JSON.stringify(text)} needs id= and src= or env=`, {
      hint: 'write --secret id=npm,src=$HOME/.npmrc or --secret id=token,env=GITHUB_TOKEN',
    });
  }
  return { id, source: src ? { file: resolve(src) } : { env: env! } };
}

/** Secrets for one image: the spec's, then --secret flags. Values are read only when a RUN asks. */
function secretsFor(image: SpecImage, flags: Map<string, { env: string } | { file: string }>, env: Record<string, string | undefined>): SecretsProvider {
  return async (id) => {
    const source = flags.get(id) ?? image.secrets[id];
    if (!source) return undefined;
    if ('env' in source) {
      const v = env[source.env];
      return v === undefined ? undefined : Buffer.from(v);
    }
    try {
      return await readFile(source.file);
    } catch (e) {
      throw new StowageError('build/secret-unreadable', `secret ${id}: cannot read ${source.file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
        hint: 'check the secret’s file path in the spec or in --secret',
      });
    }
  };
}

/** Spec destinations in the form the engine's writer takes. */
function engineDestination(d: SpecDestination) {
  switch (d.kind) {
    case 'oci':
      return { kind: 'oci' as const, dir: d.dir, tag: d.tag ?? 'latest', text: d.text };
    case 'docker-archive':
      return { kind: 'docker-archive' as const, file: d.file, refs: d.ref ? [d.ref] : [], text: d.text };
    case 'registry':
      return { kind: 'registry' as const, ref: d.ref, text: d.text };
  }
}

function imageSize(image: Image): number {
  // What a registry stores for the image: manifest, config and (compressed) layers.
  return image.manifestBytes.length + image.manifest.config.size + image.manifest.layers.reduce((n, l) => n + l.size, 0);
}

/** Writes `content` through a temp name so a reader never sees half a file. */
async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const [{ writeFileAtomic }, { mkdir }, { dirname }] = await Promise.all([import('../store/atomic.js'), import('node:fs/promises'), import('node:path')]);
  await mkdir(dirname(file), { recursive: true });
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

export async function runBuild(argv: string[], context: { tls?: TlsTrust } = {}): Promise<number> {
  const { values, positionals } = parseCommandArgs('build', argv, {
    file: { type: 'string', short: 'f' },
    var: { type: 'string', multiple: true },
    jobs: { type: 'string', short: 'j' },
    'keep-going': { type: 'boolean' },
    'fail-fast': { type: 'boolean' },
    publish: { type: 'string' },
    'no-push': { type: 'boolean' },
    'metadata-file': { type: 'string' },
    progress: { type: 'string' },
    'cache-dir': { type: 'string' },
    'no-cache': { type: 'boolean' },
    'cache-repo': { type: 'string' },
    'cache-ttl': { type: 'string' },
    'insecure-registry': { type: 'string', multiple: true },
    'registry-mirror': { type: 'string', multiple: true },
    'push-jobs': { type: 'string' },
    secret: { type: 'string', multiple: true },
    snapshotter: { type: 'string' },
    isolation: { type: 'string' },
    reproducible: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(BUILD_USAGE);
    return 0;
  }
  const env = process.env;
  const cwd = process.cwd();
  const proxy = proxyConfigFromEnv(env);
  const positiveInt = (flag: string, v: unknown): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new StowageError('usage/bad-flag', `${flag} must be a whole number of at least 1, not ${JSON.stringify(v)}`);
    return n;
  };
  const progressFlag = oneOf('--progress', values.progress as string | undefined, ['auto', 'tty', 'plain', 'json'] as const, 'auto');
  const snapshotter = oneOf('--snapshotter', values.snapshotter as string | undefined, ['auto', 'overlay', 'walk'] as const, 'auto');
  const isolation = oneOf('--isolation', values.isolation as string | undefined, ['auto', 'bwrap', 'chroot', 'none'] as const, 'auto');
  const publishFlag = values.publish === undefined ? undefined : oneOf('--publish', values.publish as string, ['immediate', 'after-all'] as const, 'immediate');
  if (values['keep-going'] && values['fail-fast']) throw new StowageError('usage/bad-flag', '--keep-going and --fail-fast contradict each other');
  const secretFlags = new Map(((values.secret as string[] | undefined) ?? []).map((s) => {
    const p = parseSecretFlag(s);
    return [p.id, p.source] as const;
  }));
  const jobsFlag = positiveInt('--jobs', values.jobs);
  const pushJobs = positiveInt('--push-jobs', values['push-jobs']) ?? 8;
  const metadataFile = values['metadata-file'] ? resolve(cwd, values['metadata-file'] as string) : undefined;

  const { resolveCacheDir } = await import('../store/cache-dir.js');
  const cacheDir = resolveCacheDir({ flag: values['cache-dir'] as string | undefined, env });
  const epochText = env.SOURCE_DATE_EPOCH;
  const sourceDateEpoch = values.reproducible ? Number(epochText ?? 0) : epochText !== undefined ? Number(epochText) : undefined;
  if (sourceDateEpoch !== undefined && !Number.isInteger(sourceDateEpoch)) {
    throw new StowageError('usage/bad-env', `SOURCE_DATE_EPOCH ${JSON.stringify(epochText)} is not a whole number of seconds`);
  }

  const controller = new AbortController();
  // Every job, request and child process of the run listens on it while it lasts: not a leak.
  setMaxListeners(0, controller.signal);
  const onSignal = () => controller.abort(new StowageError('build/interrupted', 'interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  /** Images this run built, for dependents (which start only after their dependencies' jobs end). */
  const built = new Map<string, Image>();
  /** Which image of the spec a reference names; known once the spec is loaded. */
  let ownerOf: (ref: string) => string | undefined = () => undefined;
  // The engine (its modules, blob store and registry client) needs nothing from the spec, so it
  // loads and sets up while the spec and Dockerfiles compile. The stage runner
  // (../engine/build-image.js) is loaded by the first image that builds, and the sandbox and overlay
  // probes (child processes) start when the run knows it will build: a run whose images are all
  // unchanged needs only the setup and the destinations.
  const setupFlight = import('../engine/setup.js').then(({ createEnginePorts }) => createEnginePorts({
    cacheDir,
    snapshotter,
    isolation,
    probes: 'on-first-use',
    registry: {
      insecureRegistries: (values['insecure-registry'] as string[] | undefined) ?? [],
      registryMirrors: (values['registry-mirror'] as string[] | undefined) ?? [],
      ...(context.tls ? { tls: context.tls } : {}),
      ...(proxy ? { proxy } : {}),
    },
    pushConcurrency: pushJobs,
    // FROM / COPY --from naming an image of this spec uses what this run built.
    resolveLocal: async (ref) => {
      const owner = ownerOf(ref);
      return owner !== undefined ? built.get(owner) : undefined;
    },
    signal: controller.signal,
  }));
  // Until it is awaited below, a failed setup must not count as an unhandled rejection.
  setupFlight.catch(() => undefined);

  let setup: Awaited<typeof setupFlight> | undefined;
  let closeContexts = async (): Promise<void> => {};
  const records: Record<string, ImageRecord> = {};
  try {
    const plan = await computePlan({
      file: resolve(cwd, (values.file as string | undefined) ?? 'stowage.yaml'),
      vars: parseKeyValues('--var', values.var as string[] | undefined),
      env,
      cwd,
      selection: positionals,
    });
    if (!plan.graph || !plan.spec) {
      const problems = plan.diagnostics.filter((d) => d.severity === 'error');
      const readSource = (f: string) => {
        try {
          return readFileSync(resolve(cwd, f), 'utf8');
        } catch {
          return undefined;
        }
      };
      process.stderr.write(renderHuman(problems, { color: Boolean(process.stderr.isTTY) && !env.NO_COLOR, readSource }));
      process.stderr.write(`stowage build: the spec has ${problems.length} error(s); nothing was built\n`);
      return 2;
    }
    const { graph, spec } = plan;
    ownerOf = specImageResolver(spec);
    const failure = values['keep-going'] ? 'keep-going' : values['fail-fast'] ? 'fail-fast' : spec.execution.failure;
    const publish = publishFlag ?? spec.execution.publish;
    const jobs = jobsFlag ?? spec.execution.jobs ?? (await import('node:os')).availableParallelism();
    const progress = createProgress({ mode: chooseProgressMode(progressFlag === 'auto' ? undefined : progressFlag, env, Boolean(process.stderr.isTTY)), out: process.stderr });
    const [{ parsePlatform }, { writeDestinations }, { openDirContext }, { BuiltImages, imageKey }, { createImageKeyPlanner }] = await Promise.all([
      import('../image/platform.js'),
      import('../engine/destinations.js'),
      import('../engine/context/context.js'),
      import('../cache/built-images.js'),
      import('../cache/plan-graph.js'),
    ]);
    const specImages = new Map(spec.images.map((i) => [i.name, i]));
    for (const g of graph.images) records[g.name] = { status: 'not-started', destinations: g.destinations, published: false };

    setup = await setupFlight;
    const engine = setup;
    // External bases are resolved now (tag → digest, once per run), while the rest sets up: the
    // image keys and the builds need them first. A failure is reported where they are needed.
    for (const v of graph.vertices) {
      if (v.base.kind === 'image') engine.engine.images.resolve(v.base.ref, parsePlatform(v.platform), controller.signal).catch(() => undefined);
    }
    // The sandbox and overlay probes start once the run knows it will build something: at once when
    // nothing can be reused (no step cache, or no image recorded yet: a cold run, where they overlap
    // the base pull), else when the first image's lookup misses. Nothing is built before they
    // succeed; a run whose images are all reused never starts them. Said once per run when they
    // ran: which sandbox RUN steps get and why (chroot is no security boundary). A failed probe
    // stops the run and is its error, as when nothing had started.
    let probing: Promise<void> | undefined;
    const probed = (): Promise<void> => {
      if (!probing) {
        probing = engine.probe().then(
          (r) => progress.info(`RUN isolation: ${r.isolation.isolation} (${r.isolation.reason}); snapshotter: ${r.snapshotter}`),
          (e: unknown) => {
            controller.abort(e);
            throw e;
          },
        );
        probing.catch(() => undefined); // awaited before the first build, and after the graph
      }
      return probing;
    };
    const ttlMs = await cacheTtl(values['cache-ttl'] as string | undefined, spec.cache);
    const stepCache = values['no-cache'] ? undefined : openStepCache(values['cache-repo'] as string | undefined, ttlMs, spec.cache, engine, (m) => progress.warn(m));
    const buildLimit = pLimit(jobs);
    // Bounded all the same: each lookup may hash its image's context (open files, memory).
    const lookupLimit = pLimit(Math.max(8, jobs * 4));
    const contexts = new Map<string, Promise<BuildContext>>();
    /** One context per directory and Dockerfile, its digests computed once for the key and the build. */
    const contextFor = (dir: string, dockerfile: string): Promise<BuildContext> => {
      const key = `${dir}\0${dockerfile}`;
      let ctx = contexts.get(key);
      if (!ctx) {
        ctx = openDirContext({ dir, dockerfilePath: dockerfile, cacheDir, signal: controller.signal }).then(memoizedDigests);
        contexts.set(key, ctx);
      }
      return ctx;
    };
    closeContexts = async () => {
      for (const c of contexts.values()) await c.then((x) => x.close()).catch(() => undefined);
    };
    // Unchanged images are looked up, not rebuilt, whenever the step cache is on: their key is known
    // before any step runs when everything they read is (base digests, context, args, Dockerfile).
    const reuse = stepCache
      ? {
          images: new BuiltImages({ cacheDir, store: engine.engine.store, ...(ttlMs !== undefined ? { ttlMs } : {}), warn: (m: string) => progress.warn(m) }),
          planner: createImageKeyPlanner(graph, spec, plan.dockerfiles!, {
            openContext: contextFor,
            peek: async () => false,
            resolveImage: async (ref, platform, signal) => {
              const img = await engine.engine.images.resolve(ref, platform, signal);
              return { digest: img.digest, config: img.config.config ?? {} };
            },
            resolveSpecImage: (name) => {
              const img = built.get(name);
              return img ? { digest: img.digest, config: img.config.config ?? {} } : undefined;
            },
            ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
            signal: controller.signal,
          }),
        }
      : undefined;
    if (!reuse) void probed();
    else {
      void reuse.images.anyRecorded(controller.signal).then(
        (any) => {
          if (!any) void probed();
        },
        () => void probed(),
      );
    }
    const builder = `stowage ${packageVersion()}`;

    const publishImage = async (name: string, image: Image, signal: AbortSignal): Promise<void> => {
      const specImage = specImages.get(name)!;
      const skipRegistry = values['no-push'] === true || !specImage.push;
      const targets = specImage.destinations.filter((d) => !(skipRegistry && d.kind === 'registry')).map(engineDestination);
      if (targets.length === 0) return;
      progress.phase(name, `writing ${targets.map((t) => t.text).join(', ')}`);
      await writeDestinations(image, targets, { push: engine.push, signal, onBytesSent: (n) => progress.bytesSent(name, n) });
      records[name]!.published = true;
    };

    const started = new Map<string, number>();
    const jobList: Job<Image>[] = graph.images.map((g) => ({
      id: g.name,
      deps: g.dependsOn,
      run: async ({ signal }) => {
        const specImage = specImages.get(g.name)!;
        const begin = () => {
          signal.throwIfAborted();
          if (started.has(g.name)) return;
          started.set(g.name, Date.now());
          progress.imageStart(g.name);
        };
        // The lookup is a few small reads, so it does not wait for (or hold) a build slot.
        const known = reuse && !specImage.noCache
          ? await lookupLimit(async () => {
              signal.throwIfAborted();
              // A key that cannot be worked out (a missing file, an unreachable base) is the build's
              // to report, at its Dockerfile line: this just means "not known, build it".
              const planned = await reuse.planner.finalKey(g.name).catch((e: unknown) => {
                if (signal.aborted) throw e;
                return undefined;
              });
              if (!planned) return undefined;
              const key = imageKey({ finalKey: planned.key, labels: specImage.labels, builder, ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}) });
              const found = await reuse.images.lookup(key, signal);
              if (found) {
                begin();
                records[g.name]!.reused = true;
                records[g.name]!.cacheHits = planned.steps;
                progress.phase(g.name, `unchanged since a cached build: reusing ${found.digest.slice(0, 19)}`);
              }
              return { key, found };
            })
          : undefined;
        // To be built: the probes start now (if nothing started them), not when a build slot frees.
        if (!known?.found) void probed();
        const image = known?.found ?? await buildLimit(async () => {
          await probed();
          begin();
          const key = known?.key;
          const { buildDockerfile } = await import('../engine/build-image.js');
          const image = await buildDockerfile({
            dockerfilePath: displayPath(cwd, specImage.dockerfile),
            context: await contextFor(specImage.context, specImage.dockerfile),
            ...(specImage.target !== undefined ? { target: specImage.target } : {}),
            buildArgs: specImage.args,
            labels: specImage.labels,
            platform: parsePlatform(g.platform),
            ports: engine.engine,
            options: {
              cacheDir,
              signal,
              ...(context.tls ? { tls: context.tls } : {}),
              ...(proxy ? { proxy } : {}),
              secrets: secretsFor(specImage, secretFlags, env),
              ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
              ...(stepCache && !specImage.noCache ? { stepCache } : {}),
              onEvent: (e: BuildEvent) => {
                if (e.type === 'cache-hit') records[g.name]!.cacheHits = (records[g.name]!.cacheHits ?? 0) + 1;
                progress.event(g.name, e);
              },
            },
          });
          if (key !== undefined) await reuse!.images.record(key, image, signal);
          return image;
        });
        built.set(g.name, image);
        if (publish === 'immediate') await publishImage(g.name, image, signal);
        return image;
      },
    }));
    const outcomes = await runGraph<Image>({
      jobs: jobList,
      failure,
      signal: controller.signal,
      onEnd: (o) => {
        const rec = records[o.id]!;
        rec.status = o.status;
        const start = started.get(o.id);
        if (start !== undefined) {
          const end = o.endedAt ?? Date.now();
          rec.startedAt = new Date(start).toISOString();
          rec.finishedAt = new Date(end).toISOString();
          rec.durationMs = end - start;
        }
        if (o.result) {
          rec.digest = o.result.digest;
          rec.size = imageSize(o.result);
        }
        if (o.status === 'failed') rec.error = describeError(o.error);
        if (o.blockedBy) rec.blockedBy = o.blockedBy;
        progress.imageDone(rowOf(o.id, rec));
      },
    });
    await probing;

    const allOk = [...outcomes.values()].every((o) => o.status === 'succeeded');
    if (publish === 'after-all') {
      if (allOk) {
        const publishLimit = pLimit(Math.max(1, jobs));
        await Promise.all(
          [...outcomes.values()].map((o) =>
            publishLimit(async () => {
              try {
                await publishImage(o.id, o.result!, controller.signal);
              } catch (e) {
                records[o.id]!.status = 'failed';
                records[o.id]!.error = describeError(e);
                throw e;
              }
            }),
          ),
        ).catch(() => undefined);
      } else {
        progress.warn('publish: after-all — some images failed, so nothing was written to any destination');
      }
    }

    // Cache entries still being pushed to the cache repo: finished before the push totals are read.
    await stepCache?.flush();
    const ok = Object.values(records).every((r) => r.status === 'succeeded');
    progress.finish(graph.images.map((g) => rowOf(g.name, records[g.name]!)));
    const metadata: BuildMetadata = { version: 1, status: ok ? 'succeeded' : 'failed', images: records, push: engine.pushStats?.() ?? {} };
    if (metadataFile) await writeJsonAtomic(metadataFile, metadata);
    for (const [name, rec] of Object.entries(records)) {
      if (rec.status === 'failed' && rec.error) process.stderr.write(`stowage: error: image ${name}: ${rec.error}\n`);
    }
    return ok ? 0 : 1;
  } catch (e) {
    if (metadataFile) {
      await writeJsonAtomic(metadataFile, { version: 1, status: 'failed', images: records, push: setup?.pushStats?.() ?? {}, error: describeError(e) }).catch(() => undefined);
    }
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await closeContexts();
    // Also when the spec had errors: then whatever the setup says does not matter, only that it ends.
    const engine = setup ?? (await setupFlight.catch(() => undefined));
    await engine?.close().catch(() => undefined);
  }

  function rowOf(name: string, rec: ImageRecord): SummaryRow {
    return {
      image: name,
      status: rec.status,
      ...(rec.digest ? { digest: rec.digest } : {}),
      ...(rec.size !== undefined ? { size: rec.size } : {}),
      ...(rec.durationMs !== undefined ? { seconds: rec.durationMs / 1000 } : {}),
      ...(rec.cacheHits !== undefined ? { cacheHits: rec.cacheHits } : {}),
      ...(rec.reused ? { reused: true } : {}),
      ...(rec.error ? { error: rec.error } : rec.blockedBy ? { error: `not built: ${rec.blockedBy} failed` } : {}),
    };
  }
}

/** The cache TTL in ms from --cache-ttl or the spec's `cache.ttl`; undefined: entries never expire. */
async function cacheTtl(ttlFlag: string | undefined, specCache: { ttl?: string } | undefined): Promise<number | undefined> {
  const { ttlOption } = await import('../cache/entry.js');
  return ttlFlag !== undefined ? ttlOption(ttlFlag) : ttlOption(specCache?.ttl, "the spec's cache.ttl");
}

/** The run's step cache: local always, the registry too with --cache-repo or the spec's `cache`. */
function openStepCache(
  repoFlag: string | undefined,
  ttlMs: number | undefined,
  specCache: { repo: string; ttl?: string } | undefined,
  engine: { createStepCache(o: { repo?: string; ttlMs?: number; warn(message: string): void }): import('../cache/step-cache.js').StepCache },
  warn: (message: string) => void,
) {
  const repo = repoFlag ?? specCache?.repo;
  return engine.createStepCache({ ...(repo !== undefined ? { repo } : {}), ...(ttlMs !== undefined ? { ttlMs } : {}), warn });
}

/**
 * The context with each path's digest computed once: the image key and the build's step keys read
 * the same files, and hashing a big context twice would cost as much as the key saves.
 */
function memoizedDigests(ctx: BuildContext): BuildContext {
  const digests = new Map<string, Promise<string>>();
  const one = (rel: string, signal?: AbortSignal): Promise<string> => {
    let d = digests.get(rel);
    if (!d) {
      d = ctx.fileDigests([rel], signal).then((m) => m.get(rel)!);
      d.catch(() => digests.delete(rel));
      digests.set(rel, d);
    }
    return d;
  };
  return {
    dir: ctx.dir,
    ignore: ctx.ignore,
    ignoreFile: ctx.ignoreFile,
    resolveSources: (patterns, o) => ctx.resolveSources(patterns, o),
    fileDigests: async (relPaths, signal) => new Map(await Promise.all(relPaths.map(async (rel) => [rel, await one(rel, signal)] as const))),
    close: () => ctx.close(),
  };
}

/** One line for the user: StowageErrors carry their own message, file:line and hint. */
export function describeError(e: unknown): string {
  if (isStowageError(e)) {
    const where = e.file ? `${e.file}${e.range ? `:${e.range.start.line}` : ''}: ` : '';
    return `${where}${e.message}${e.hint ? ` (hint: ${e.hint})` : ''}`;
  }
  if (isAbortError(e)) return 'stopped';
  return errorMessage(e);
}
