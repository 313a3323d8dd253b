/**
 * Composition: the real parts behind the engine's ports (used by `stowage executor`, `stowage
 * build`, tests). Apart from the build itself (./build-image.ts): a run whose images are all
 * unchanged needs the store and the registry, not the stage runner, the snapshotters or the sandbox,
 * and each of those is loaded when first used.
 */
import { join, resolve as resolvePath } from 'node:path';
import type { Image } from '../image/blob.js';
import type { Platform } from '../image/types.js';
import { StowageError } from '../util/errors.js';
import type { StepCache } from '../cache/step-cache.js';
import type { PushProgress } from './destinations.js';
import type { EnginePorts, ImageSource, SnapshotterPort } from './instructions/types.js';
import type { SnapshotterKind } from './snapshot/types.js';
import type { TlsTrust } from '../registry/tls-trust.js';
import type { ProxyConfig } from '../registry/proxy.js';

export interface EngineSetupOptions {
  cacheDir: string;
  snapshotter: 'auto' | 'overlay' | 'walk';
  isolation: 'auto' | 'bwrap' | 'chroot' | 'none';
  /** `tls`: CAs trusted for https registries (default: Node's); `proxy`: HTTPS_PROXY & co. (default: none). */
  registry?: { insecureRegistries?: string[]; registryMirrors?: string[]; tls?: TlsTrust; proxy?: ProxyConfig };
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
  /**
   * When the probes behind `auto` choices (an overlay mount, a bubblewrap sandbox: child processes)
   * start: at setup (the default), overlapping whatever the caller does next; or on first use — a
   * rootfs prepared, a step run, `probe()` called — so a run that builds nothing (every image
   * reused) never spends them.
   */
  probes?: 'at-setup' | 'on-first-use';
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
   * Starts the probes that `auto` choices need (an overlay mount, a bubblewrap sandbox) unless they
   * have started, and settles once they are done: how RUN steps are isolated and why, and which
   * snapshotter prepares rootfs, for the one line the CLI prints. Rejects with the probe's error
   * when RUN steps cannot be sandboxed here. Every call returns the same promise. With the default
   * `probes: 'at-setup'` they already run while the build starts (the base pull and unpack); what
   * needs their answer (preparing a rootfs, running a step) waits for it either way.
   */
  probe(): Promise<EngineReady>;
  close(): Promise<void>;
}

export interface EngineReady {
  isolation: { isolation: 'bwrap' | 'chroot' | 'none'; reason: string };
  snapshotter: string;
}

export async function createEnginePorts(o: EngineSetupOptions): Promise<EngineSetup> {
  // What building needs beyond the store and the registry (the layer writer, the unpacker, the
  // snapshotters, the sandbox, and the probes' modules) is imported when first used: a run that only
  // reuses images it built before never loads it.
  const [{ FsBlobStore }, { storeLayer }, { RegistryClient }, { parseReference }, { pullImage }, { Pusher }, { StepCache }, { createRegistryCache }] = await Promise.all([
    import('../store/blob-store.js'),
    import('../store/layers.js'),
    import('../registry/client.js'),
    import('../registry/reference.js'),
    import('../registry/pull.js'),
    import('../registry/push.js'),
    import('../cache/step-cache.js'),
    import('../cache/registry-cache.js'),
  ]);
  const snapshotDetect = once(() => import('./snapshot/detect.js'));
  const lookupClients: InstanceType<typeof RegistryClient>[] = [];
  const store = await FsBlobStore.open(o.cacheDir);
  const client = new RegistryClient({
    insecureRegistries: o.registry?.insecureRegistries ?? [],
    registryMirrors: o.registry?.registryMirrors ?? [],
    ...(o.registry?.tls ? { tls: o.registry.tls } : {}),
    ...(o.registry?.proxy ? { proxy: o.registry.proxy } : {}),
  });
  const pusher = new Pusher({ client, ...(o.pushConcurrency !== undefined ? { concurrencyPerRegistry: o.pushConcurrency } : {}) });
  const unpacked = once(async () => new (await import('./unpacked-layers.js')).UnpackedLayerStore(o.cacheDir));
  // `none` without a build root keeps private rootfs, and runStep refuses RUN steps there (what they
  // wrote to absolute paths would miss the image); builds without RUN steps still work.
  const buildRoot = o.isolation === 'none' && o.isolationNone ? await createBuildRootFor(o.isolationNone, o.cacheDir) : undefined;
  // Probed concurrently with everything up to the first rootfs and the first RUN step (each probe
  // is a child process or two; nothing waits for them before it must). Each starts once, on the
  // first call; until a caller awaits it, a failure must not count as an unhandled rejection.
  const workRoot = join(o.cacheDir, 'work');
  let chosenKind: SnapshotterKind | undefined;
  const chooseKind = once(() => quiet(snapshotDetect().then(async (d) => (chosenKind = await d.chooseSnapshotter({ kind: o.snapshotter, workRoot, signal: o.signal })))));
  const isolationOf = once(
    (): Promise<EngineReady['isolation']> =>
      buildRoot
        ? Promise.resolve({ isolation: 'none' as const, reason: buildRoot.reason })
        : o.isolation === 'auto'
          ? quiet(import('./sandbox/detect.js').then((d) => d.detectIsolation(o.signal)))
          : Promise.resolve({ isolation: o.isolation, reason: `chosen with --isolation=${o.isolation}` }),
  );
  const probe = once(() => quiet(Promise.all([isolationOf(), buildRoot ? buildRoot.snapshotter.name : chooseKind()]).then(([isolation, snapshotter]): EngineReady => ({ isolation, snapshotter }))));
  if ((o.probes ?? 'at-setup') === 'at-setup') probe();
  const snapshotter: SnapshotterPort = buildRoot?.snapshotter ?? lazySnapshotter(chooseKind, () => chosenKind ?? o.snapshotter, async (kind) => (await snapshotDetect()).snapshotterOf(kind, { workRoot }));
  const runBuildRoot = buildRoot ? { buildRoot: buildRoot.snapshotter.root } : {};
  const runStep = once(async () => (await import('./sandbox/run-step.js')).runStep);
  const writeLayer = once(async () => (await import('./layer/writer.js')).writeLayer);
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
    unpacked: { ensureUnpacked: async (layer, signal) => (await unpacked()).ensureUnpacked(layer, signal) },
    snapshotter,
    layerWriter: {
      async writeLayer(changes, options) {
        const r = await (await writeLayer())(changes as never, store, options);
        return storeLayer(store, r.descriptor, r.diffId);
      },
    },
    sandbox: {
      runStep: async (request) => {
        const { isolation } = await isolationOf();
        return (await runStep())({ ...request, isolation, ...runBuildRoot });
      },
    },
    images: o.images ?? registryImages,
  };
  return {
    engine,
    probe,
    push: async (image, refText, signal, progress) => {
      const ref = parseReference(refText);
      await pusher.push({ registry: ref.registry, repository: ref.repository, tags: ref.tag ? [ref.tag] : [], root: image, ...progress }, signal);
    },
    pushStats: () => pusher.stats(),
    createStepCache: (co) => {
      // Lookups give up fast: an unreachable cache must cost one short wait and a warning, not minutes of retries.
      const lookupClient = co.repo
        ? new RegistryClient({
            insecureRegistries: o.registry?.insecureRegistries ?? [],
            retry: { maxAttempts: 2, baseDelayMs: 200 },
            ...(o.registry?.tls ? { tls: o.registry.tls } : {}),
            ...(o.registry?.proxy ? { proxy: o.registry.proxy } : {}),
          })
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

/**
 * The snapshotter port before the probe has chosen one: the first `prepare` starts the probe unless
 * it has started, waits for the choice and makes the snapshotter (loading its module); its name is
 * the choice once known.
 */
function lazySnapshotter(choose: () => Promise<SnapshotterKind>, name: () => string, make: (kind: SnapshotterKind) => Promise<SnapshotterPort>): SnapshotterPort {
  const made = once(async () => make(await choose()));
  return {
    get name() {
      return name();
    },
    prepare: async (options) => (await made()).prepare(options),
  };
}

/** `p` itself, marked handled: a probe nobody awaits yet must not fail the process when it rejects. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** `f`'s one result, made on the first call (a failure too: every caller gets the same answer). */
function once<T>(f: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= f());
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
