/**
 * Builds one Dockerfile into an image: parse, analyse (only the stages the target needs, in
 * dependency order, each built once however many stages use it), run every stage, apply `--label`s
 * last, and return the image. Nothing is written to a destination here; `writeDestinations` does
 * that separately so a failed build leaves every destination untouched.
 */
import { readFile } from 'node:fs/promises';
import pLimit from 'p-limit';
import { join, resolve as resolvePath } from 'node:path';
import type { Image } from '../image/blob.js';
import { imageFromParts } from '../image/image.js';
import { patchConfig } from '../image/mutate.js';
import type { Platform } from '../image/types.js';
import { parseDockerfile } from '../dockerfile/parse.js';
import { analyzeDockerfile } from '../dockerfile/analyze.js';
import type { Diagnostic, SourceRange } from '../util/errors.js';
import { isAbortError } from '../util/errors.js';
import { StowageError } from '../util/errors.js';
import type { BlobStore } from '../store/types.js';
import { parseDockerArchiveReference, parseOciReference } from '../store/references.js';
import { openDirContext, type BuildContext } from './context/context.js';
import { resolveBase, type StageBase } from './base-image.js';
import { buildStage, type StageOptions } from './stage-runner.js';
import { isSharedRoot } from './build-root/build-root.js';
import type { BaseIdentity } from '../cache/keys.js';
import type { StepCache, StepCachePort } from '../cache/step-cache.js';
import type {
  BuildEvent,
  ImageSource,
  LayerWriterPort,
  SandboxPort,
  SecretsProvider,
  SnapshotterPort,
  StageResult,
  StageRootfs,
  UnpackedLayer,
  UnpackedLayersPort,
} from './instructions/types.js';

export interface EnginePorts {
  store: BlobStore;
  unpacked: UnpackedLayersPort;
  snapshotter: SnapshotterPort;
  layerWriter: LayerWriterPort;
  sandbox: SandboxPort;
  /** External images (FROM, COPY --from=<image>): the registry puller, or local images by name. */
  images: ImageSource;
}

export interface BuildOptions {
  /** Seconds; reproducible builds use it for `created` and to clamp layer mtimes. */
  sourceDateEpoch?: number;
  network?: 'default' | 'none' | 'host';
  secrets?: SecretsProvider;
  cacheDir: string;
  signal: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
  now?: () => Date;
  /** Stages of one Dockerfile built at the same time when they don't depend on each other (default 2). */
  stageConcurrency?: number;
  /** The step cache (src/cache/step-cache.ts); absent: every step runs. */
  stepCache?: StepCachePort;
}

export interface BuildDockerfileRequest {
  dockerfilePath: string;
  /** The context directory; or `context`, already opened (e.g. a tar:// context) and closed by the caller. */
  contextDir?: string;
  context?: BuildContext;
  target?: string;
  buildArgs: Readonly<Record<string, string>>;
  /** Applied last, like `docker build --label`: no history entry. */
  labels?: Readonly<Record<string, string>>;
  platform: Platform;
  ports: EnginePorts;
  options: BuildOptions;
}

/** A failure while executing an instruction, pointed at that instruction's file:line. */
function atInstruction(e: unknown, file: string, range: SourceRange, what: string): unknown {
  if (isAbortError(e)) return e;
  if (e instanceof StowageError) {
    if (e.file) return e;
    return new StowageError(e.code, `${what}: ${e.message}`, { file, range, cause: e, ...(e.hint ? { hint: e.hint } : {}) });
  }
  return new StowageError('build/failed', `${what}: ${e instanceof Error ? e.message : String(e)}`, { file, range, cause: e });
}

/** Diagnostics that are errors become one StowageError pointing at the first, listing all. */
function failOnErrors(diagnostics: readonly Diagnostic[], file: string): void {
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length === 0) return;
  const first = errors[0]!;
  const more = errors.slice(1).map((d) => `\n  ${d.file ?? file}:${d.range?.start.line ?? '?'}: ${d.message}`).join('');
  throw new StowageError(first.code, `${first.message}${more}`, {
    file: first.file ?? file,
    ...(first.range ? { range: first.range } : {}),
    ...(first.hint ? { hint: first.hint } : {}),
  });
}

export async function buildDockerfile(req: BuildDockerfileRequest): Promise<Image> {
  const { ports, options } = req;
  const signal = options.signal;
  const dockerfilePath = resolvePath(req.dockerfilePath);
  let text: string;
  try {
    text = await readFile(dockerfilePath, 'utf8');
  } catch (e) {
    throw new StowageError('build/dockerfile-unreadable', `cannot read the Dockerfile ${req.dockerfilePath}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      hint: 'check the --dockerfile path (a relative path is relative to the current directory, then to the context)',
      cause: e,
    });
  }
  const shownPath = req.dockerfilePath;
  const parsed = parseDockerfile(text, { file: shownPath });
  failOnErrors(parsed.diagnostics, shownPath);
  const dockerfile = parsed.dockerfile!;
  const analyzed = analyzeDockerfile(dockerfile, { ...(req.target !== undefined ? { target: req.target } : {}), buildArgs: { ...req.buildArgs }, platform: req.platform });
  failOnErrors(analyzed.diagnostics, shownPath);
  for (const d of [...parsed.diagnostics, ...analyzed.diagnostics]) {
    if (d.severity !== 'error') options.onEvent?.({ type: 'warning', diagnostic: { ...d, file: d.file ?? shownPath } });
  }
  const targetStage = dockerfile.stages[analyzed.target]?.name;

  if (!req.context && req.contextDir === undefined) throw new Error('buildDockerfile needs contextDir or context');
  const context: BuildContext = req.context ?? (await openDirContext({ dir: resolvePath(req.contextDir!), dockerfilePath, signal }));
  const ownsContext = req.context === undefined;
  const stageResults = new Map<number, StageResult>();
  const prepared: { release(): Promise<void> }[] = [];
  const imageRootfs = new Map<string, Promise<string>>();
  const stageOptions: StageOptions = {
    buildArgs: req.buildArgs,
    platform: req.platform,
    network: options.network ?? 'default',
    cacheDir: options.cacheDir,
    signal,
    ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
    ...(options.secrets ? { secrets: options.secrets } : {}),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    ...(options.now ? { now: options.now } : {}),
  };

  /** An external image's filesystem for COPY --from=<image>: unpacked once per build. */
  const materialize = (ref: string, sig: AbortSignal): Promise<string> => {
    let p = imageRootfs.get(ref);
    if (!p) {
      p = (async () => {
        const image = await ports.images.resolve(ref, req.platform, sig);
        const snapshotter = ports.snapshotter;
        if (isSharedRoot(snapshotter)) {
          // The build root holds the running stage; the image gets a private tree.
          const tree = await snapshotter.extractTree({ layers: image.layers, signal: sig });
          prepared.push(tree);
          return tree.path;
        }
        const lowers: UnpackedLayer[] = [];
        for (const l of image.layers) lowers.push(await ports.unpacked.ensureUnpacked(l, sig));
        const rootfs = await ports.snapshotter.prepare({ lowers, signal: sig });
        prepared.push(rootfs);
        return rootfs.path;
      })();
      imageRootfs.set(ref, p);
    }
    return p;
  };

  // Independent stages build concurrently: each waits only for the stages it depends on, and a
  // limit bounds the stage bodies (not the waiting). The first failure aborts the others.
  const inner = new AbortController();
  const onOuterAbort = () => inner.abort(signal.reason);
  signal.addEventListener('abort', onOuterAbort, { once: true });
  // One build root (--isolation=none) holds one stage at a time.
  const limit = pLimit(isSharedRoot(ports.snapshotter) ? 1 : Math.max(1, options.stageConcurrency ?? 2));
  const flights = new Map<number, Promise<void>>();
  const buildOne = async (a: (typeof analyzed.stages)[number]): Promise<void> => {
    await Promise.all(a.dependsOn.map((i) => flights.get(i)));
    await limit(async () => {
      inner.signal.throwIfAborted();
      const stage = dockerfile.stages[a.index]!;
      const platform = a.platform ?? req.platform;
      const base = await resolveBase({ base: a.base as StageBase, platform, stageResults, images: ports.images, signal: inner.signal }).catch((e: unknown) => {
        throw atInstruction(e, shownPath, stage.from.range, `FROM ${stage.from.image}`);
      });
      const baseIdentity = options.stepCache ? cacheBaseOf(a.base as StageBase, base.image, stageResults) : undefined;
      const result = await buildStage({
        stage,
        dockerfile,
        dockerfilePath: shownPath,
        baseImage: base.image,
        ...(base.inheritedState !== undefined ? { inheritedState: base.inheritedState as never } : {}),
        onbuildTriggers: base.triggers,
        ...(options.stepCache && baseIdentity ? { cache: { port: options.stepCache, base: baseIdentity } } : {}),
        ...(req.target !== undefined && targetStage !== undefined ? { targetStage } : {}),
        ports: {
          store: ports.store,
          unpacked: ports.unpacked,
          snapshotter: ports.snapshotter,
          layerWriter: ports.layerWriter,
          sandbox: ports.sandbox,
          context,
          stageResults,
          images: ports.images,
          imageRootfs: materialize,
        },
        options: { ...stageOptions, platform, signal: inner.signal },
      });
      prepared.push(result);
      stageResults.set(a.index, {
        image: result.image,
        ...(result.rootfsDir !== undefined ? { rootfsDir: result.rootfsDir } : {}),
        ...(result.ensureRootfs ? { ensureRootfs: result.ensureRootfs } : {}),
        ...(result.cacheKey !== undefined ? { cacheKey: result.cacheKey } : {}),
        finalState: result.finalState,
        ...(stage.name ? { name: stage.name } : {}),
      });
    });
  };

  try {
    for (const a of analyzed.stages) {
      const flight = buildOne(a);
      flight.catch((e: unknown) => inner.abort(e));
      flights.set(a.index, flight);
    }
    const outcomes = await Promise.allSettled(flights.values());
    const firstFailure = firstRealFailure(outcomes, inner.signal);
    if (firstFailure !== undefined) throw firstFailure;
    signal.throwIfAborted();
    const final = stageResults.get(analyzed.target);
    if (!final) throw new Error('the target stage was not built');
    return applyLabels(final.image, req.labels ?? {});
  } finally {
    signal.removeEventListener('abort', onOuterAbort);
    // Stage rootfs are kept until the end for COPY --from; nothing of them is needed any more.
    for (const r of prepared.reverse()) await r.release().catch(() => undefined);
    if (ownsContext) await context.close().catch(() => undefined);
  }
}

/** A stage's base as step cache key material; undefined when the base stage has no key. */
function cacheBaseOf(base: StageBase, image: Image, stageResults: ReadonlyMap<number, StageResult>): BaseIdentity | undefined {
  switch (base.kind) {
    case 'scratch':
      return { kind: 'scratch' };
    case 'stage': {
      const key = stageResults.get(base.index)?.cacheKey;
      return key === undefined ? undefined : { kind: 'stage', key };
    }
    case 'image':
      return { kind: 'image', digest: image.digest };
    default: {
      const never: never = base;
      throw new Error(`unknown base ${JSON.stringify(never)}`);
    }
  }
}

/**
 * The error to report when stages failed: the one that caused the abort (the others then failed
 * only because they were aborted).
 */
function firstRealFailure(outcomes: PromiseSettledResult<void>[], aborted: AbortSignal): unknown {
  const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as unknown);
  if (failures.length === 0) return undefined;
  if (aborted.aborted && failures.includes(aborted.reason)) return aborted.reason;
  return failures[0];
}

/** `--label`s go into the config with no history entry, after everything else (docker build's behaviour). */
export function applyLabels(image: Image, labels: Readonly<Record<string, string>>): Image {
  if (Object.keys(labels).length === 0) return image;
  const merged = { ...(image.config.config?.Labels ?? {}), ...labels };
  const config = patchConfig(image.config, { Labels: merged });
  return imageFromParts({ config, layers: image.layers, format: 'oci' });
}

// -------------------------------------------------------------------------------------------------
// Destinations

export type Destination =
  | { kind: 'oci'; dir: string; tag: string; text: string }
  | { kind: 'docker-archive'; file: string; refs: string[]; text: string }
  | { kind: 'registry'; ref: string; text: string };

/**
 * `oci:<dir>[:tag]`, `docker-archive:<file>[:ref]`, otherwise a registry reference. Like skopeo,
 * the path ends at the first `:` after the transport.
 */
export function parseDestination(text: string): Destination {
  // The same parsers as spec destinations and `stowage copy` (skopeo's rules for oci:/docker-archive:).
  if (text.startsWith('oci:')) {
    const r = parseOciReference(text);
    return { kind: 'oci', dir: r.dir, tag: r.tag ?? 'latest', text };
  }
  if (text.startsWith('docker-archive:')) {
    const r = parseDockerArchiveReference(text);
    return { kind: 'docker-archive', file: r.file, refs: r.ref === undefined ? [] : [r.ref], text };
  }
  return { kind: 'registry', ref: text, text };
}

export interface PushProgress {
  /** Told the size of each piece of blob body sent (blobs another push already sent are not counted again). */
  onBytesSent?: (bytes: number) => void;
}

export interface DestinationPorts extends PushProgress {
  /** Pushes to registry refs; absent when pushing is disabled (a registry destination is then an error). */
  push?: (image: Image, ref: string, signal: AbortSignal, progress?: PushProgress) => Promise<void>;
  signal: AbortSignal;
}

export interface WrittenDestination {
  destination: string;
  digest: string;
}

/** Writes the image to every destination. Local files go to a temp name first, then are renamed. */
export async function writeDestinations(image: Image, destinations: readonly (string | Destination)[], ports: DestinationPorts): Promise<WrittenDestination[]> {
  const out: WrittenDestination[] = [];
  const parsed = destinations.map((d) => (typeof d === 'string' ? parseDestination(d) : d));
  // Group oci: destinations per directory so several tags land in one index.json write.
  const ociTags = new Map<string, string[]>();
  for (const d of parsed) if (d.kind === 'oci') ociTags.set(resolvePath(d.dir), [...(ociTags.get(resolvePath(d.dir)) ?? []), d.tag]);
  const { writeImageToLayout } = await import('../store/oci-layout.js');
  for (const [dir, tags] of ociTags) await writeImageToLayout(dir, image, { tags, signal: ports.signal });
  for (const d of parsed) {
    switch (d.kind) {
      case 'oci':
        out.push({ destination: d.text, digest: image.digest });
        break;
      case 'docker-archive': {
        const { writeDockerArchive } = await import('../store/docker-archive.js');
        const file = resolvePath(d.file);
        await writeDockerArchive(file, image, { refs: d.refs, signal: ports.signal });
        out.push({ destination: d.text, digest: image.digest });
        break;
      }
      case 'registry':
        if (!ports.push) {
          throw new StowageError('build/no-push', `cannot push to ${d.ref}: pushing is disabled`, { hint: 'remove --no-push, or use an oci: or docker-archive: destination' });
        }
        await ports.push(image, d.ref, ports.signal, ports.onBytesSent ? { onBytesSent: ports.onBytesSent } : {});
        out.push({ destination: d.text, digest: image.digest });
        break;
      default: {
        const never: never = d;
        throw new Error(`unknown destination ${JSON.stringify(never)}`);
      }
    }
  }
  return out;
}

/** Digest files and the like: written to a temp name, then renamed (re-exported for the CLI). */
export { writeFileAtomic } from '../store/atomic.js';

// -------------------------------------------------------------------------------------------------
// Composition: the real parts behind the ports (used by `stowage executor`, `stowage build`, tests)

export interface EngineSetupOptions {
  cacheDir: string;
  snapshotter: 'auto' | 'overlay' | 'walk';
  isolation: 'auto' | 'bwrap' | 'chroot' | 'none';
  registry?: { insecureRegistries?: string[]; registryMirrors?: string[] };
  /** Replaces the registry puller for FROM / COPY --from images entirely (tests, offline use). */
  images?: ImageSource;
  /**
   * Consulted before the registry: images this run built itself (image-to-image dependencies of a
   * spec) by reference; undefined means "not mine, pull it".
   */
  resolveLocal?: (ref: string, platform: Platform, signal: AbortSignal) => Promise<Image | undefined>;
  /** Concurrent blob transfers per registry host (default 8). */
  pushConcurrency?: number;
  /**
   * With `isolation: 'none'`: the build root (the container's `/` for `stowage executor`) and what
   * must survive its emptying besides mounts, stowage's install dir and the cache dir. Without it,
   * `none` stages get private rootfs and any RUN step is refused.
   */
  isolationNone?: IsolationNoneOptions;
  signal: AbortSignal;
}

export interface IsolationNoneOptions {
  /** Absolute; emptied before every stage. No default on purpose: the caller names what is consumed. */
  buildRoot: string;
  /** Build in `/` even where no container is detected. */
  force: boolean;
  /** `--ignore-path`: paths inside the build root that are neither deleted nor snapshotted. */
  ignorePaths: readonly string[];
  /** Host paths the build reads or writes later: the context, output files and dirs, the registry credentials dir. */
  protect: readonly string[];
  onWarning?: (message: string) => void;
}

export interface EngineSetup {
  engine: EnginePorts;
  /** Pushes an image to a registry reference `host/repo:tag`. */
  push: (image: Image, ref: string, signal: AbortSignal, progress?: PushProgress) => Promise<void>;
  /** What the shared pusher did so far, per registry (uploads, mounts, bytes, requests). */
  pushStats(): Record<string, unknown>;
  /**
   * The run's step cache: the local index in the cache dir, plus `repo` as a registry cache (entries
   * pushed through the shared pusher). Call `flush()` before exiting so background pushes finish.
   */
  createStepCache(options: { repo?: string; ttlMs?: number; warn(message: string): void }): StepCache;
  /**
   * Settles once the probes that `auto` choices need (an overlay mount, a bubblewrap sandbox) are
   * done: how RUN steps are isolated and why, and which snapshotter prepares rootfs, for the one
   * line the CLI prints. Rejects with the probe's error when RUN steps cannot be sandboxed here.
   * The probes run while the build starts (the base pull and unpack); what needs their answer
   * (preparing a rootfs, running a step) waits for it.
   */
  ready: Promise<EngineReady>;
  close(): Promise<void>;
}

export interface EngineReady {
  isolation: { isolation: 'bwrap' | 'chroot' | 'none'; reason: string };
  snapshotter: string;
}

export async function createEnginePorts(o: EngineSetupOptions): Promise<EngineSetup> {
  const [{ FsBlobStore }, { storeLayer }, { writeLayer }, { UnpackedLayerStore }, snapshot, sandbox, { RegistryClient }, { parseReference }, { pullImage }, { Pusher }, { StepCache }, { createRegistryCache }] =
    await Promise.all([
      import('../store/blob-store.js'),
      import('../store/layers.js'),
      import('./layer/writer.js'),
      import('./unpacked-layers.js'),
      import('./snapshot/index.js'),
      import('./sandbox/index.js'),
      import('../registry/client.js'),
      import('../registry/reference.js'),
      import('../registry/pull.js'),
      import('../registry/push.js'),
      import('../cache/step-cache.js'),
      import('../cache/registry-cache.js'),
    ]);
  const lookupClients: InstanceType<typeof RegistryClient>[] = [];
  const store = await FsBlobStore.open(o.cacheDir);
  const client = new RegistryClient({
    insecureRegistries: o.registry?.insecureRegistries ?? [],
    registryMirrors: o.registry?.registryMirrors ?? [],
  });
  const pusher = new Pusher({ client, ...(o.pushConcurrency !== undefined ? { concurrencyPerRegistry: o.pushConcurrency } : {}) });
  const unpacked = new UnpackedLayerStore(o.cacheDir);
  // `none` without a build root keeps private rootfs, and runStep refuses RUN steps there (what they
  // wrote to absolute paths would miss the image); builds without RUN steps still work.
  const buildRoot = o.isolation === 'none' && o.isolationNone ? await createBuildRootFor(o.isolationNone, o.cacheDir) : undefined;
  // Probed concurrently with everything up to the first rootfs and the first RUN step (each probe
  // is a child process or two; nothing waits for them before it must).
  const snapshotterFlight: Promise<SnapshotterPort> = buildRoot
    ? Promise.resolve(buildRoot.snapshotter)
    : snapshot.createSnapshotter({ kind: o.snapshotter, workRoot: join(o.cacheDir, 'work'), signal: o.signal });
  const isolationFlight: Promise<EngineReady['isolation']> = buildRoot
    ? Promise.resolve({ isolation: 'none' as const, reason: buildRoot.reason })
    : o.isolation === 'auto'
      ? sandbox.detectIsolation(o.signal)
      : Promise.resolve({ isolation: o.isolation, reason: `chosen with --isolation=${o.isolation}` });
  const ready = Promise.all([isolationFlight, snapshotterFlight]).then(([isolation, s]): EngineReady => ({ isolation, snapshotter: s.name }));
  // Until a caller awaits them, a failed probe must not count as an unhandled rejection.
  for (const p of [snapshotterFlight, isolationFlight, ready]) p.catch(() => undefined);
  const snapshotter: SnapshotterPort = buildRoot?.snapshotter ?? lazySnapshotter(snapshotterFlight, o.snapshotter);
  const runBuildRoot = buildRoot ? { buildRoot: buildRoot.snapshotter.root } : {};
  const pulled = new Map<string, Promise<Image>>();
  const registryImages: ImageSource = {
    async resolve(ref, platform, signal) {
      const local = await o.resolveLocal?.(ref, platform, signal);
      if (local) return local;
      const key = `${ref}|${platform.os}/${platform.architecture}/${platform.variant ?? ''}`;
      let p = pulled.get(key);
      if (!p) {
        p = pullImage(parseReference(ref), { client, store, platform, signal }).then((r) => r.image);
        pulled.set(key, p);
      }
      return p;
    },
  };
  const engine: EnginePorts = {
    store,
    unpacked: { ensureUnpacked: (layer, signal) => unpacked.ensureUnpacked(layer, signal) },
    snapshotter,
    layerWriter: {
      async writeLayer(changes, options) {
        const r = await writeLayer(changes as never, store, options);
        return storeLayer(store, r.descriptor, r.diffId);
      },
    },
    sandbox: { runStep: async (request) => sandbox.runStep({ ...request, isolation: (await isolationFlight).isolation, ...runBuildRoot }) },
    images: o.images ?? registryImages,
  };
  return {
    engine,
    ready,
    push: async (image, refText, signal, progress) => {
      const ref = parseReference(refText);
      await pusher.push({ registry: ref.registry, repository: ref.repository, tags: ref.tag ? [ref.tag] : [], root: image, ...progress }, signal);
    },
    pushStats: () => pusher.stats(),
    createStepCache: (co) => {
      // Lookups give up fast: an unreachable cache must cost one short wait and a warning, not minutes of retries.
      const lookupClient = co.repo
        ? new RegistryClient({ insecureRegistries: o.registry?.insecureRegistries ?? [], retry: { maxAttempts: 2, baseDelayMs: 200 } })
        : undefined;
      if (lookupClient) lookupClients.push(lookupClient);
      const remote =
        co.repo && lookupClient
          ? createRegistryCache({
              repo: co.repo,
              client: lookupClient,
              store,
              push: async (image, refText, signal) => {
                const ref = parseReference(refText);
                await pusher.push({ registry: ref.registry, repository: ref.repository, tags: ref.tag ? [ref.tag] : [], root: image }, signal);
              },
            })
          : undefined;
      return new StepCache({ cacheDir: o.cacheDir, store, ...(remote ? { remote } : {}), ...(co.ttlMs !== undefined ? { ttlMs: co.ttlMs } : {}), warn: co.warn });
    },
    close: async () => {
      await client.close?.();
      for (const c of lookupClients) await c.close().catch(() => undefined);
    },
  };
}

/** The snapshotter port before the probe has chosen one: `prepare` waits for the choice. */
function lazySnapshotter(chosen: Promise<SnapshotterPort>, asked: string): SnapshotterPort {
  let name = asked;
  void chosen.then((s) => (name = s.name), () => undefined);
  return {
    get name() {
      return name;
    },
    prepare: async (options) => (await chosen).prepare(options),
  };
}

/**
 * `--isolation=none`: the safety gate (a container, or --force, before `/` is consumed), the ignore
 * list (mounts, stowage's install dir, the cache dir, the caller's inputs and outputs, --ignore-path)
 * and the build root that empties and fills the root per stage.
 */
async function createBuildRootFor(none: IsolationNoneOptions, cacheDir: string): Promise<{ snapshotter: import('./build-root/build-root.js').BuildRoot; reason: string }> {
  const [{ BuildRoot }, guard, ignoreList] = await Promise.all([import('./build-root/build-root.js'), import('./build-root/guard.js'), import('./build-root/ignore-list.js')]);
  if (!guard.isDirectory(resolvePath(none.buildRoot))) throw new StowageError('engine/build-root-missing', `the build root ${none.buildRoot} is not a directory`);
  // Mount points are real paths: compare them with the real root, and keep protected paths under
  // both the name given and the real one (a symlinked /var/run, a symlinked cache dir).
  const root = guard.realOrSelf(resolvePath(none.buildRoot));
  const protect = [guard.installDir(), resolvePath(cacheDir), ...none.protect.map((p) => resolvePath(p))].flatMap((p) => [p, guard.realOrSelf(p)]);
  const container = guard.probeContainer();
  guard.assertBuildRootAllowed({ root, force: none.force, container });
  const ignore = ignoreList.buildIgnoreList({
    root,
    mountPoints: ignoreList.readMountPoints(),
    protect,
    ignorePaths: none.ignorePaths,
  });
  const snapshotter = new BuildRoot({ root, ignore, scratchDir: join(resolvePath(cacheDir), 'build-root-trees'), ...(none.onWarning ? { onWarning: none.onWarning } : {}) });
  const where = root === '/' ? (container.evidence !== undefined ? `this container's / (${container.evidence})` : '/ (--force)') : root;
  return {
    snapshotter,
    reason: `chosen with --isolation=none: steps run unsandboxed in ${where}, which is emptied and refilled for each stage (${ignore.length} paths kept)`,
  };
}
