import type { ChangeSet } from '../layer/changeset.js';

export type SnapshotterKind = 'overlay' | 'walk';

/**
 * An unpacked layer directory. `whiteouts`/`opaqueDirs` are the layer's deletions as data (from
 * `UnpackedLayerStore`); for a bare path, overlay-format markers in the tree (char 0/0 devices,
 * `trusted.overlay.opaque=y`) are read instead.
 */
export interface LowerDir {
  path: string;
  whiteouts?: readonly string[];
  opaqueDirs?: readonly string[];
}

export interface PrepareOptions {
  /** Unpacked layer dirs, bottom first. */
  lowers: ReadonlyArray<string | LowerDir>;
  /**
   * A directory owned by this rootfs (mount point, upper dirs, private copy live here); must not
   * exist or be empty. Default: a fresh directory under the snapshotter's `workRoot`.
   */
  workDir?: string;
  /**
   * Paths (relative to the rootfs) the builder injects; their contents never enter a snapshot, an
   * ignored directory itself never does, and an ignored file only when really changed (not a freshly
   * created empty mount point). Defaults to `DEFAULT_IGNORE`.
   */
  ignore?: readonly string[];
  signal?: AbortSignal;
}

export interface SnapshotOptions {
  signal?: AbortSignal;
  /** Extra ignored paths for this step only (its `RUN --mount` targets). */
  ignore?: readonly string[];
  /**
   * No later step of this stage writes the rootfs (it is only read, e.g. by COPY --from, and then
   * released): the snapshotter need not make it ready for another step.
   */
  final?: boolean;
}

export interface Rootfs {
  /** Where the step sees `/`. */
  readonly path: string;
  readonly kind: SnapshotterKind;
  /** Same as `Snapshotter.snapshot(this, options)`. */
  snapshot(options?: SnapshotOptions): Promise<ChangeSet>;
  /**
   * Resolves when the next step may use `path` (overlay: the remount that gives it a fresh upper,
   * started by the snapshot, runs meanwhile beside the previous step's layer write, and `path` is
   * briefly unmounted). After a `final` snapshot `path` stays readable as it is (COPY --from).
   */
  ready(signal?: AbortSignal): Promise<void>;
  /**
   * Waits for what a snapshot left running (a remount) and reports its failure, starting nothing
   * owed: then `path` shows the tree to readers.
   */
  settle(): Promise<void>;
  /** Same as `Snapshotter.release(this)`. */
  release(): Promise<void>;
}

/**
 * prepare → (ready → run a step → snapshot)* → release. A ChangeSet's `source` paths stay valid until the
 * next step runs (walk: they are the live files) — write its layer before starting the next step.
 */
export interface Snapshotter {
  readonly kind: SnapshotterKind;
  /** = kind (for progress output). */
  readonly name: string;
  prepare(options: PrepareOptions): Promise<Rootfs>;
  /** What changed since prepare or the previous snapshot; the rootfs stays usable for the next step. */
  snapshot(rootfs: Rootfs, options?: SnapshotOptions): Promise<ChangeSet>;
  /** Unmounts and deletes everything under the rootfs' workDir. */
  release(rootfs: Rootfs): Promise<void>;
}

export const DEFAULT_IGNORE: readonly string[] = ['proc', 'sys', 'dev', 'etc/hosts', 'etc/resolv.conf', 'etc/hostname'];

export interface SnapshotterOptions {
  /** Where `prepare` makes work dirs when not given one. Default: the OS temp dir. */
  workRoot?: string;
  /**
   * How the walk snapshotter builds its stat index: GNU `find` (default where it runs) or a Node
   * walk. Both give identical change sets; tests pin one to cover each.
   */
  indexScanner?: 'find' | 'node';
}
