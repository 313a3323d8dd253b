/**
 * The fast snapshotter (root, or a user namespace that may mount): the rootfs is an overlay mount
 * whose lowers are the unpacked layers plus earlier steps' committed upper dirs; after a step the
 * fresh upper dir IS the change, so a snapshot walks only it. Cost grows with what changed.
 *
 * Between steps the overlay is unmounted, the upper is committed as the new top lower, and a fresh
 * upper is mounted at the same path. Lowers are named by short symlinks (`l/<n>`) and the mount runs
 * with the work dir as cwd, so hundreds of lowers fit in the mount option page.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { StowageError } from '../../util/errors.js';
import type { ChangeEntry, ChangeSet } from '../layer/changeset.js';
import { XattrReader } from '../layer/fs-helper.js';
import { ignoreSet, imageXattrs, isMountPointArtifact, isOverlayWhiteout, lstatRec, statRec, toChangeEntry, underIgnored, walkTree } from './scan.js';
import { DEFAULT_IGNORE, type LowerDir, type PrepareOptions, type Rootfs, type SnapshotOptions, type Snapshotter, type SnapshotterOptions } from './types.js';
import { discardTree, makeWorkDir, readLowerMeta } from './walk.js';

/** Linux limits mount data to one page; keep room for the other options. */
const MAX_MOUNT_DATA = 4000;

class OverlayRootfs implements Rootfs {
  readonly kind = 'overlay' as const;
  /** Lower dir symlink names (relative to workDir), bottom first. */
  readonly lowerLinks: string[] = [];
  /** Host paths of the lowers, bottom first (for existence checks of ignored paths). */
  readonly lowerPaths: string[] = [];
  upperIndex = 0;
  mounted = false;
  released = false;
  /**
   * After a snapshot: the remount that gives the next step a fresh upper — running (a promise,
   * awaited by `ready`), or owed (`'owed'`: the snapshot was final, so it runs only if a step
   * writes after all). undefined: the mount is current.
   */
  remount: Promise<void> | 'owed' | undefined;
  constructor(
    readonly owner: OverlaySnapshotter,
    readonly path: string,
    readonly workDir: string,
    readonly ignore: ReadonlySet<string>,
  ) {}
  snapshot(options?: SnapshotOptions): Promise<ChangeSet> {
    return this.owner.snapshot(this, options);
  }
  async ready(signal?: AbortSignal): Promise<void> {
    await this.settle();
    if (this.remount === 'owed') {
      this.remount = remountOverlay(this, signal);
      await this.settle();
    }
  }
  async settle(): Promise<void> {
    const running = this.remount;
    if (!(running instanceof Promise)) return;
    try {
      await running;
    } finally {
      this.remount = undefined;
    }
  }
  release(): Promise<void> {
    return this.owner.release(this);
  }
  get upper(): string {
    return `${this.workDir}/u${this.upperIndex}`;
  }
  get xattrs(): XattrReader {
    return this.owner.xattrs;
  }
}

function run(cmd: string, args: string[], cwd: string, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], signal });
    const err: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(Buffer.concat(err).toString().trim() || `${cmd} exited ${code}`))));
  });
}

/** The mount option string for the rootfs' current lowers and upper. */
function mountData(rf: OverlayRootfs): string {
  const lowers = rf.lowerLinks.length > 0 ? [...rf.lowerLinks].reverse() : ['empty'];
  const data = `lowerdir=${lowers.join(':')},upperdir=u${rf.upperIndex},workdir=w${rf.upperIndex},redirect_dir=off,index=off,metacopy=off`;
  if (data.length > MAX_MOUNT_DATA) {
    throw new StowageError('snapshot/too-many-lowers', `${rf.lowerLinks.length} layers do not fit in one overlay mount`, {
      hint: 'use the walk snapshotter (--snapshotter=walk) for images with this many layers',
    });
  }
  return data;
}

function mountFailed(e: unknown): StowageError {
  return new StowageError('snapshot/overlay-mount-failed', `cannot mount the overlay rootfs: ${(e as Error).message}`, {
    hint: 'overlay needs root (or a user namespace that may mount); use --snapshotter=walk otherwise',
    cause: e,
  });
}

async function mountOverlay(rf: OverlayRootfs, signal?: AbortSignal): Promise<void> {
  mkdirSync(rf.upper, { mode: 0o755 });
  mkdirSync(`${rf.workDir}/w${rf.upperIndex}`);
  const data = mountData(rf);
  try {
    // Relative option paths resolve against cwd (the work dir), keeping the option string short.
    await run('mount', ['-t', 'overlay', 'overlay', '-o', data, rf.path], rf.workDir, signal);
  } catch (e) {
    throw mountFailed(e);
  }
  rf.mounted = true;
}

/**
 * Unmounts and mounts again over the (already extended) lowers with a fresh upper, in one child
 * process: a spawn from a large Node process costs tens of milliseconds, and this runs per step.
 */
async function remountOverlay(rf: OverlayRootfs, signal?: AbortSignal): Promise<void> {
  mkdirSync(rf.upper, { mode: 0o755 });
  mkdirSync(`${rf.workDir}/w${rf.upperIndex}`);
  const data = mountData(rf);
  try {
    await run('sh', ['-c', 'umount "$1" 2>/dev/null || umount -l "$1" || exit 1; exec mount -t overlay overlay -o "$2" "$1"', 'sh', rf.path, data], rf.workDir, signal);
  } catch (e) {
    // Which half failed (or where an abort cut it) is unknown: `mounted` stays true, and release's
    // unmount finds out whether anything is still mounted there.
    throw mountFailed(e);
  }
  rf.mounted = true;
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/** Whether `path` is a mount point in this process's mount namespace (mountinfo escapes blanks as octal). */
function isMountPoint(path: string): boolean {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] !== undefined && unescape(line.split(' ')[4]!) === canonical(path));
}

async function unmount(rf: OverlayRootfs): Promise<void> {
  if (!rf.mounted) return;
  try {
    await run('umount', [rf.path], rf.workDir);
  } catch {
    try {
      await run('umount', ['-l', rf.path], rf.workDir);
    } catch (e) {
      // After a failed or aborted remount the path may hold no mount at all: nothing to undo.
      if (isMountPoint(rf.path)) throw e;
    }
  }
  rf.mounted = false;
}

export class OverlaySnapshotter implements Snapshotter {
  readonly kind = 'overlay' as const;
  readonly name = 'overlay';
  /**
   * One xattr helper process for every rootfs this snapshotter prepares (a run's stages and
   * images): python3's start costs ~50 ms of CPU, which twenty images on one base paid twenty times.
   * Requests queue one at a time; idle, it keeps no build from exiting and ends with this process.
   */
  readonly xattrs = new XattrReader();
  constructor(private readonly options: SnapshotterOptions = {}) {}

  async prepare(options: PrepareOptions): Promise<Rootfs> {
    const workDir = makeWorkDir(options.workDir, this.options.workRoot, 'overlay');
    mkdirSync(`${workDir}/l`);
    mkdirSync(`${workDir}/empty`);
    const path = `${workDir}/merged`;
    mkdirSync(path);
    const rf = new OverlayRootfs(this, path, workDir, ignoreSet(options.ignore ?? DEFAULT_IGNORE));
    try {
      for (const lower of options.lowers) addLower(rf, overlayLower(lower));
      await mountOverlay(rf, options.signal);
      rf.xattrs.start(); // its startup overlaps the first step
    } catch (e) {
      rmSync(workDir, { recursive: true, force: true });
      throw e;
    }
    return rf;
  }

  async snapshot(rootfs: Rootfs, options: SnapshotOptions = {}): Promise<ChangeSet> {
    const rf = asOverlay(rootfs);
    const ignore = ignoreSet([...rf.ignore], options.ignore);
    // The step has finished, so nothing writes the upper: it can be read while still mounted, and
    // the remount (which turns it into a lower) overlaps with reading its xattrs and with writing
    // the layer; the next step waits for it (`ready`). After a stage's last writing step the
    // remount is only owed: the mount already shows the final tree to readers (COPY --from), and
    // release unmounts it — the small case saves a umount, a mount and a shell per stage.
    const upper = rf.upper;
    // Change entries are made during the walk itself: no map of stat records for the whole upper
    // stays alive until the layer is written (20,000 files: ~6 MB less heap to grow into).
    const deletions: string[] = [];
    const entries: ChangeEntry[] = [];
    walkTree(upper, { noDescend: ignore }, (rel, st) => {
      const ig = underIgnored(rel, ignore);
      if (ig === 'inside') return;
      const r = statRec(st);
      if (isOverlayWhiteout(r)) {
        deletions.push(rel);
        return;
      }
      // An ignored directory's only changes come from its (ignored) contents or from being a mount point.
      if (ig === 'self' && r.type === 'dir') return;
      if (ig === 'self' && !existsInLowers(rf, rel) && isMountPointArtifact(`${upper}/${rel}`, r)) return;
      const e = toChangeEntry(rel, `${upper}/${rel}`, r, undefined);
      if (e) entries.push(e);
    });
    // Commit: this upper becomes the top lower; the next step writes into a fresh one.
    addLower(rf, upper);
    rf.upperIndex++;
    if (options.final) rf.remount = 'owed';
    else {
      const remount = remountOverlay(rf, options.signal);
      remount.catch(() => undefined); // reported by `ready`, or moot at release
      rf.remount = remount;
    }
    const { xattrs } = await rf.xattrs.read(entries.map((e) => `${upper}/${e.path}`), options.signal);
    const opaqueDirs: string[] = [];
    for (const e of entries) {
      const x = xattrs.get(`${upper}/${e.path}`);
      if (x === undefined) continue;
      const v = x['trusted.overlay.opaque'] ?? x['user.overlay.opaque'];
      if (e.type === 'dir' && v !== undefined && Buffer.from(v).toString() === 'y') opaqueDirs.push(e.path);
      const own = imageXattrs(x);
      if (own) e.xattrs = own;
    }
    return { entries, deletions, opaqueDirs };
  }

  async release(rootfs: Rootfs): Promise<void> {
    const rf = asOverlay(rootfs);
    // A remount still running must end before the unmount (whichever mount it left is unmounted).
    if (rf.remount instanceof Promise) await rf.remount.catch(() => undefined);
    rf.remount = undefined;
    await unmount(rf);
    rf.released = true;
    await discardTree(rf.workDir);
  }
}

/**
 * Overlay needs whiteouts as markers in the tree. A lower unpacked without them (recorded as data,
 * e.g. by a non-root process) is fine when it deletes nothing; otherwise that is an error, not a
 * silently wrong rootfs.
 */
function overlayLower(lower: string | LowerDir): string {
  const path = typeof lower === 'string' ? lower : lower.path;
  const ld = typeof lower === 'string' ? readLowerMeta(lower) : lower;
  for (const w of ld?.whiteouts ?? []) {
    const r = lstatRec(`${path}/${w}`);
    if (r === undefined || !isOverlayWhiteout(r)) {
      throw new StowageError('snapshot/lower-not-overlay', `layer dir ${path} records deletions without overlay whiteouts`, {
        hint: 'unpack layers as root (UnpackedLayerStore with asRoot) for the overlay snapshotter, or use --snapshotter=walk',
      });
    }
  }
  return path;
}

function addLower(rf: OverlayRootfs, hostPath: string): void {
  const name = `l/${rf.lowerLinks.length.toString(36)}`;
  symlinkSync(hostPath, `${rf.workDir}/${name}`);
  rf.lowerLinks.push(name);
  rf.lowerPaths.push(hostPath);
}

/** Whether `rel` is visible in the lowers (top down, stopping at a whiteout). */
function existsInLowers(rf: OverlayRootfs, rel: string): boolean {
  for (let i = rf.lowerPaths.length - 1; i >= 0; i--) {
    const r = lstatRec(`${rf.lowerPaths[i]}/${rel}`);
    if (r === undefined) continue;
    return !isOverlayWhiteout(r);
  }
  return false;
}

function asOverlay(r: Rootfs): OverlayRootfs {
  if (!(r instanceof OverlayRootfs)) throw new StowageError('snapshot/wrong-rootfs', 'this rootfs was not prepared by the overlay snapshotter');
  if (r.released) throw new StowageError('snapshot/released', 'this rootfs was already released');
  return r;
}
