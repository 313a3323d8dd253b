/**
 * What an executing instruction (RUN, COPY, ADD, WORKDIR) receives and returns.
 *
 * The ports are structural interfaces naming exactly what the stage runner calls, so the runner can
 * be driven by the real snapshotter/sandbox/context and by nothing else in tests: tests use the real
 * parts, wired in build-image.ts (`createEnginePorts`).
 */
import type { Image, Layer } from '../../image/blob.js';
import type { ContainerConfig, Platform } from '../../image/types.js';
import type { BlobStore } from '../../store/types.js';
import type { BuildContext } from '../context/context.js';
import type { RunStepOptions } from '../sandbox/types.js';

/** A filesystem a stage runs in; after each step `snapshot()` returns what the step changed. */
export interface StageRootfs {
  readonly path: string;
  /**
   * Written as one layer by `writeLayer`; `ignore` lists absolute in-rootfs paths to leave out;
   * `final`: no later step of the stage writes this rootfs.
   */
  snapshot(options: { ignore?: string[]; final?: boolean; signal: AbortSignal }): Promise<unknown>;
  /** Resolves when the next step may use `path`; after a `final` snapshot it is readable as it is. */
  ready(signal: AbortSignal): Promise<void>;
  /** Waits for background work a snapshot left (reporting its failure); then `path` is readable. */
  settle(): Promise<void>;
  release(): Promise<void>;
}

/** An unpacked layer: a directory, plus its deletions as data when the unpacker recorded them. */
export type UnpackedLayer = string | { path: string; whiteouts?: readonly string[]; opaqueDirs?: readonly string[] };

export interface SnapshotterPort {
  readonly name: string;
  /** A writable rootfs whose initial content is the given unpacked layers (bottom first). */
  prepare(options: { lowers: UnpackedLayer[]; signal: AbortSignal }): Promise<StageRootfs>;
}

export interface LayerWriterPort {
  /** Turns a change set into a layer blob in the store. */
  writeLayer(changes: unknown, options: { clampMtime?: number; signal: AbortSignal }): Promise<Layer>;
}

export interface UnpackedLayersPort {
  ensureUnpacked(layer: Layer, signal: AbortSignal): Promise<UnpackedLayer>;
}

/** What the stage runner asks of the sandbox: its own options minus what the composition root fixes. */
export type RunStepRequest = Omit<RunStepOptions, 'isolation' | 'tools'>;
export type { SandboxMount as SandboxMountSpec, SandboxUser } from '../sandbox/types.js';

export interface SandboxPort {
  runStep(request: RunStepRequest): Promise<{ exitCode: number; outputTail: string[] }>;
}

/** Where an image that is not a stage of this Dockerfile comes from (registry pull, or a local image). */
export interface ImageSource {
  resolve(ref: string, platform: Platform, signal: AbortSignal): Promise<Image>;
}

/** Everything a build needs from the outside (src/engine/setup.ts composes the real parts). */
export interface EnginePorts {
  store: BlobStore;
  unpacked: UnpackedLayersPort;
  snapshotter: SnapshotterPort;
  layerWriter: LayerWriterPort;
  sandbox: SandboxPort;
  /** External images (FROM, COPY --from=<image>): the registry puller, or local images by name. */
  images: ImageSource;
}

export type SecretsProvider = (id: string) => Promise<Buffer | undefined>;

export type BuildEvent =
  | { type: 'stage-start'; stage: number; name?: string; base: string }
  | { type: 'step-start'; stage: number; line: number; text: string }
  | { type: 'step-done'; stage: number; line: number; layer?: string; cached?: boolean }
  /** The step was restored from the step cache instead of running (between its step-start and step-done). */
  | { type: 'cache-hit'; stage: number; line: number; key: string; source: 'local' | 'remote' | 'this-run' }
  | { type: 'output'; stage: number; line: number; chunk: Buffer; stream: 'stdout' | 'stderr' }
  | { type: 'stage-done'; stage: number; digest: string }
  /** Parser and analysis warnings (build checks are `stowage lint`'s; these are the parser's own). */
  | { type: 'warning'; diagnostic: import('../../util/errors.js').Diagnostic };

/** A built stage (or an image materialised for COPY --from / FROM). */
export interface StageResult {
  image: Image;
  /** The stage's final rootfs, kept until the build ends for COPY --from and RUN --mount from=. */
  rootfsDir?: string;
  /**
   * Prepares the final rootfs on first use when the stage never needed one (every step came
   * from the step cache); kept until the build ends like `rootfsDir`.
   */
  ensureRootfs?: (signal: AbortSignal) => Promise<string>;
  /** The stage's final step cache key, when the build uses the step cache (COPY --from keys name it). */
  cacheKey?: string;
  /** Stage-env state after the last instruction; a child stage inherits its ARGs (DOCKERFILE.md A7). */
  finalState?: unknown;
  /** Lowercased stage name, for COPY --from=<name>. */
  name?: string;
}

export type { BlobStore, ContainerConfig };

/** The real parts a stage's steps work with. */
export interface StagePorts {
  store: BlobStore;
  unpacked: UnpackedLayersPort;
  snapshotter: SnapshotterPort;
  layerWriter: LayerWriterPort;
  sandbox: SandboxPort;
  context: BuildContext;
  /** Results of earlier stages of this Dockerfile, by stage index (FROM <stage>, COPY --from). */
  stageResults: ReadonlyMap<number, StageResult>;
  /** External images for COPY --from=<image> and RUN --mount from=<image>. */
  images: ImageSource;
  /** Rootfs of an external image (materialised once per build), for COPY --from=<image>. */
  imageRootfs(ref: string, signal: AbortSignal): Promise<string>;
}

export interface StageOptions {
  buildArgs: Readonly<Record<string, string>>;
  platform: Platform;
  /** Seconds; sets `created` and clamps layer mtimes (SOURCE_DATE_EPOCH / --reproducible). */
  sourceDateEpoch?: number;
  network: 'default' | 'none' | 'host';
  secrets?: SecretsProvider;
  cacheDir: string;
  signal: AbortSignal;
  onEvent?: (event: BuildEvent) => void;
  /** Time used for `created` when no sourceDateEpoch is given; injected so results are testable. */
  now?: () => Date;
  /** CAs trusted by `ADD https://…` downloads (default: Node's). */
  tls?: import('../../registry/tls-trust.js').TlsTrust;
  /** HTTPS_PROXY & co. for `ADD <url>` downloads (default: direct). */
  proxy?: import('../../registry/proxy.js').ProxyConfig;
  /**
   * Kaniko's `--single-snapshot`: each stage's filesystem changes become one layer, taken at its
   * last filesystem step; the steps before it keep their history entries as empty layers.
   */
  singleSnapshot?: boolean;
}

/** Everything an executing instruction needs: where to write, and through which ports. */
export interface StepEnvironment {
  rootfs: StageRootfs;
  dockerfilePath: string;
  stageIndex: number;
  /** The Dockerfile's escape character, for expanding words. */
  escape: string;
  ports: StagePorts;
  options: StageOptions;
  /** No later instruction of the stage touches the filesystem (the snapshot may skip readying the rootfs for one). */
  lastFilesystemStep: boolean;
  /** With `options.singleSnapshot`: the stage's snapshot deferred so far (shared by its steps). */
  deferredSnapshot: DeferredSnapshot;
}

/** What `--single-snapshot` owes the stage's one snapshot. */
export interface DeferredSnapshot {
  /** Steps changed the rootfs and no layer holds their changes yet. */
  pending: boolean;
  /** Their ignore paths (RUN --mount targets), left out of that snapshot too. */
  ignores: string[];
}
