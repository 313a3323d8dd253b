/**
 * The build root of `--isolation=none` (Kaniko's model): a stage's rootfs IS this directory — the
 * container's own `/` in production — never a private copy. Before a stage it is emptied (except the
 * ignore list) and the stage's layers are unpacked straight into it from their blobs; RUN steps then
 * run directly in it, and snapshots diff a stat index over it.
 *
 * One root holds one stage at a time: a stage must release its rootfs before the next one prepares
 * (the stage runner does), and a second concurrent build in the same process is refused rather than
 * allowed to trample the first one's files.
 *
 * Later stages that COPY --from (or RUN --mount from=) a finished stage, or an external image, get a
 * private tree under the cache dir, extracted from that stage's layers (`extractTree`): the layers are
 * exactly the stage's final filesystem, they are already in the blob store, and this needs no guess
 * about which files a later stage will read (Kaniko copies the needed files out of `/` before wiping
 * instead, which also needs every COPY --from source known up front). Extracting costs one more
 * decompression of those layers, paid only for stages something copies from.
 *
 * A stage whose base is the stage that just finished in the root (`FROM builder`) continues in the
 * root as that stage left it (`park`), as BuildKit continues from the parent's snapshot: no emptying,
 * no unpacking. The root then holds exactly that stage's layers (every step after the last restore
 * from the step cache was snapshotted into them); what it holds beyond them — xattrs and nanosecond
 * mtimes that snapshots here do not capture — is what BuildKit's child stage would see too.
 *
 * Nothing here spawns a process: after the first stage the host's tools may be the image's own.
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Layer } from '../../image/blob.js';
import { StowageError } from '../../util/errors.js';
import type { StageRootfs, SnapshotterPort, UnpackedLayer } from '../instructions/types.js';
import type { ChangeSet } from '../layer/changeset.js';
import type { StatIndex } from '../snapshot/stat-index.js';
import { unpackLayer } from '../unpack.js';
import { diffRoot, indexRoot } from './snapshot.js';
import { wipeRoot } from './wipe.js';

export interface BuildRootOptions {
  /** The directory that becomes every stage's `/` (production: `/`). Required: there is no default. */
  root: string;
  /** Relative paths under `root` that are never deleted, written or snapshotted (see ignore-list.ts). */
  ignore: readonly string[];
  /** Where private trees for COPY --from are extracted (a directory on the ignore list, under the cache dir). */
  scratchDir: string;
  /** Keep ownership when unpacking (default: running as uid 0). */
  asRoot?: boolean;
  onWarning?: (message: string) => void;
}

/** A tree extracted from layers outside the build root; removed by `release`. */
export interface ExtractedTree {
  readonly path: string;
  release(): Promise<void>;
}

/** The capability the stage runner checks for: a snapshotter whose rootfs is one shared directory. */
export interface SharedRootSnapshotter extends SnapshotterPort {
  readonly sharedRoot: true;
  /** Empties the root and unpacks `layers` (bottom first) into it. */
  prepareFromLayers(options: { layers: readonly Layer[]; signal: AbortSignal }): Promise<StageRootfs>;
  /** The filesystem of `layers` in a private directory (for COPY --from, RUN --mount from=). */
  extractTree(options: { layers: readonly Layer[]; signal: AbortSignal }): Promise<ExtractedTree>;
  /**
   * Gives the root back like `release`, stating that it holds exactly `layers` (bottom first), so a
   * stage built on them may continue in it instead of emptying and unpacking.
   */
  park(rootfs: StageRootfs, layers: readonly Layer[]): Promise<void>;
}

export function isSharedRoot(s: SnapshotterPort): s is SharedRootSnapshotter {
  return (s as Partial<SharedRootSnapshotter>).sharedRoot === true;
}

class BuildRootFs implements StageRootfs {
  released = false;
  constructor(
    private readonly owner: BuildRoot,
    readonly path: string,
    public index: StatIndex,
  ) {}
  async snapshot(options: { ignore?: string[]; signal: AbortSignal }): Promise<ChangeSet> {
    if (this.released) throw new StowageError('engine/build-root-released', 'this stage no longer owns the build root');
    options.signal.throwIfAborted();
    const { changes, index } = diffRoot(this.path, this.index, this.owner.ignoreSet, stepIgnore(options.ignore ?? []));
    this.index = index;
    return changes;
  }
  async ready(): Promise<void> {}
  async settle(): Promise<void> {}
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.owner.releaseRoot(this);
  }
}

/** Identity of a layer stack, bottom first. */
function layersKey(layers: readonly Layer[]): string {
  return layers.map((l) => l.diffId).join(',');
}

/** `RUN --mount` targets (absolute, in-root) as relative paths. */
function stepIgnore(targets: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const t of targets) {
    const n = t.split('/').filter((c) => c !== '' && c !== '.').join('/');
    if (n !== '' && !n.split('/').includes('..')) out.add(n);
  }
  return out;
}

export class BuildRoot implements SharedRootSnapshotter {
  readonly sharedRoot = true as const;
  readonly name = 'build-root';
  readonly root: string;
  readonly ignoreSet: ReadonlySet<string>;
  private live: BuildRootFs | undefined;
  /** The root's content when a finished stage parked it: its layers' diffIds and its last index. */
  private parked: { key: string; index: StatIndex } | undefined;
  private readonly asRoot: boolean;

  constructor(private readonly options: BuildRootOptions) {
    if (!path.isAbsolute(options.root)) throw new Error(`build root ${options.root} must be absolute`);
    this.root = path.resolve(options.root);
    this.ignoreSet = new Set(options.ignore);
    this.asRoot = options.asRoot ?? process.getuid?.() === 0;
  }

  /** Unpacked layer directories are another snapshotter's input; the build root unpacks blobs itself. */
  prepare(_options: { lowers: UnpackedLayer[]; signal: AbortSignal }): Promise<StageRootfs> {
    return Promise.reject(new Error('the build root is prepared from layers (prepareFromLayers), not from unpacked directories'));
  }

  async prepareFromLayers(options: { layers: readonly Layer[]; signal: AbortSignal }): Promise<StageRootfs> {
    if (this.live) {
      throw new StowageError('engine/build-root-busy', `--isolation=none builds in one root (${this.root}), and another stage or build is using it`, {
        hint: 'build one image per container (stowage executor), with stages one after another',
      });
    }
    const parked = this.parked;
    this.parked = undefined;
    if (parked !== undefined && parked.key === layersKey(options.layers)) {
      const continued = new BuildRootFs(this, this.root, parked.index);
      this.live = continued;
      return continued;
    }
    const claim = new BuildRootFs(this, this.root, new Map());
    this.live = claim;
    try {
      await wipeRoot(this.root, this.ignoreSet, options.signal);
      for (const layer of options.layers) await this.unpackInto(layer, this.root, this.ignoreSet, options.signal);
      claim.index = indexRoot(this.root, this.ignoreSet);
      return claim;
    } catch (e) {
      this.live = undefined;
      throw e;
    }
  }

  async extractTree(options: { layers: readonly Layer[]; signal: AbortSignal }): Promise<ExtractedTree> {
    mkdirSync(this.options.scratchDir, { recursive: true, mode: 0o700 });
    const dir = mkdtempSync(path.join(this.options.scratchDir, 'tree-'));
    try {
      for (const layer of options.layers) await this.unpackInto(layer, dir, new Set(), options.signal);
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    return { path: dir, release: () => rm(dir, { recursive: true, force: true }) };
  }

  async park(rootfs: StageRootfs, layers: readonly Layer[]): Promise<void> {
    if (!(rootfs instanceof BuildRootFs) || rootfs !== this.live) {
      await rootfs.release();
      return;
    }
    const index = rootfs.index;
    await rootfs.release();
    this.parked = { key: layersKey(layers), index };
  }

  /** Called by a rootfs when its stage is done with the root. */
  releaseRoot(fs: BuildRootFs): void {
    if (this.live === fs) this.live = undefined;
  }

  private async unpackInto(layer: Layer, dir: string, ignore: ReadonlySet<string>, signal: AbortSignal): Promise<void> {
    const stream = await layer.open(signal);
    const r = await unpackLayer(stream, dir, {
      signal,
      asRoot: this.asRoot,
      whiteouts: 'apply',
      ignore,
      subprocesses: false,
    });
    // One line per layer: without CAP_CHOWN every file would warn on its own.
    if (r.warnings.length > 0) {
      const more = r.warnings.length > 1 ? ` (and ${r.warnings.length - 1} more)` : '';
      this.options.onWarning?.(`unpacking layer ${layer.descriptor.digest.slice(0, 19)}: ${r.warnings[0]}${more}`);
    }
    if (r.diffId !== layer.diffId) {
      throw new StowageError('unpack/diffid-mismatch', `layer ${layer.descriptor.digest} unpacked to ${r.diffId}, but its image says ${layer.diffId}`, {
        hint: 'the blob or the image config is damaged; delete the cache dir and pull again',
      });
    }
  }
}
