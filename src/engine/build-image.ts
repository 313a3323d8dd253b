/**
 * Builds one Dockerfile into an image: parse, analyse (only the stages the target needs, in
 * dependency order, each built once however many stages use it), run every stage, apply `--label`s
 * last, and return the image. Nothing is written to a destination here; `writeDestinations` does
 * that separately so a failed build leaves every destination untouched.
 */
import { readFile } from 'node:fs/promises';
import pLimit from 'p-limit';
import { resolve as resolvePath } from 'node:path';
import type { Image } from '../image/blob.js';
import { imageFromParts } from '../image/image.js';
import { patchConfig } from '../image/mutate.js';
import type { Platform } from '../image/types.js';
import { parseDockerfile } from '../dockerfile/parse.js';
import { analyzeDockerfile } from '../dockerfile/analyze.js';
import type { Diagnostic, SourceRange } from '../util/errors.js';
import { isAbortError } from '../util/errors.js';
import { StowageError } from '../util/errors.js';
import { openDirContext, type BuildContext } from './context/context.js';
import { resolveBase, type StageBase } from './base-image.js';
import { buildStage, type StageOptions } from './stage-runner.js';
import { isSharedRoot } from './build-root/build-root.js';
import type { BaseIdentity } from '../cache/keys.js';
import type { StepCachePort } from '../cache/step-cache.js';
import type { TlsTrust } from '../registry/tls-trust.js';
import type { ProxyConfig } from '../registry/proxy.js';
import type { BuildEvent, EnginePorts, SecretsProvider, StageResult, UnpackedLayer } from './instructions/types.js';

export type { EnginePorts } from './instructions/types.js';

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
  /** CAs trusted by `ADD https://…` downloads (default: Node's). */
  tls?: TlsTrust;
  /** HTTPS_PROXY & co. for `ADD <url>` downloads (default: direct). */
  proxy?: ProxyConfig;
  /** Kaniko's `--single-snapshot`: one layer per stage, taken at its last filesystem step; no step cache. */
  singleSnapshot?: boolean;
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
  const context: BuildContext = req.context ?? (await openDirContext({ dir: resolvePath(req.contextDir!), dockerfilePath, cacheDir: options.cacheDir, signal }));
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
    ...(options.tls ? { tls: options.tls } : {}),
    ...(options.proxy ? { proxy: options.proxy } : {}),
    ...(options.singleSnapshot ? { singleSnapshot: true } : {}),
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

// Where images go and the parts behind the ports live beside this module; re-exported for callers
// that build and write in one (the executor, tests).
export { parseDestination, writeDestinations, writeFileAtomic, type Destination, type DestinationPorts, type PushProgress, type WrittenDestination } from './destinations.js';
export { createEnginePorts, type EngineReady, type EngineSetup, type EngineSetupOptions, type IsolationNoneOptions } from './setup.js';
