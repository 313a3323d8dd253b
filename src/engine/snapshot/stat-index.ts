/**
 * The walk snapshotter's stat index: every path under a root mapped to one opaque string of its stat
 * fields, so "did it change" is one string comparison and nothing is parsed or allocated per field.
 *
 * GNU find does the walk (`-printf` of the fields, NUL-terminated): it stats each entry from C in
 * about half the CPU time of the cheapest `readdirSync`+`lstatSync` loop in Node (a `Stats` object per
 * call), runs on the other core while this one parses, and keeps the event loop free. Where GNU find
 * is missing (busybox images) the same index comes from a synchronous Node walk.
 *
 * Record layout, space separated (the path is the key, not part of it):
 *   type mode uid gid size mtime ctime ino [birth]   — birth (ns, from statx) for dirs only
 * (no nlink or dev: a link count change also changes ctime, and a rootfs is one filesystem)
 * Field formats differ between the two scanners; a rootfs keeps the scanner it was prepared with, so
 * records are only ever compared with records from the same scanner. Birth time is what tells a
 * directory that was deleted and re-created (possibly on a reused inode) from one that was edited.
 */
import { spawn } from 'node:child_process';
import { closeSync, lstatSync, openSync, readFileSync, rmSync } from 'node:fs';
import { StowageError, assertNever } from '../../util/errors.js';
import { walkTree } from './scan.js';

export type StatIndex = Map<string, string>;
export type IndexScanner = 'find' | 'node';

export interface IndexScanOptions {
  /** Relative paths whose subtrees are not descended (the path itself is recorded). */
  noDescend?: ReadonlySet<string>;
  signal?: AbortSignal;
  /** A file outside the scanned tree that GNU find may write its listing to (faster than a pipe). */
  scratchFile?: string;
}

/** Field positions in a record. */
export const REC_TYPE = 0;
export const REC_INO = 7;
export const REC_BIRTH = 8;
/** Spaces before the path in a find record. */
const FIELDS = 8;

const FIND_FORMAT = '%y %m %U %G %s %T@ %C@ %i %P\\0';

/** fnmatch pattern that matches `s` literally (find's -path). */
function globLiteral(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** Whether GNU find (with -printf) runs here; decided once per snapshotter. */
export async function findAvailable(signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('find', ['/', '-maxdepth', '0', '-printf', '%y'], { stdio: ['ignore', 'pipe', 'ignore'], signal });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0 && out === 'd'));
  });
}

/** Parses NUL-terminated `fields… path` records into `index`; returns the unparsed tail. */
function parseRecords(text: string, index: StatIndex): string {
  let start = 0;
  for (;;) {
    const end = text.indexOf('\0', start);
    if (end < 0) return text.slice(start);
    // The path follows the 8th space; it may itself contain spaces.
    let sp = start;
    for (let k = 0; k < FIELDS; k++) sp = text.indexOf(' ', sp) + 1;
    index.set(text.slice(sp, end), text.slice(start, sp - 1));
    start = end + 1;
  }
}

/** Appends directories' birth times (find cannot print them; statx can). */
function addDirBirths(root: string, index: StatIndex): void {
  for (const [rel, rec] of index) {
    if (rec.charCodeAt(0) !== 100 /* d */) continue;
    const st = lstatSync(`${root}/${rel}`, { bigint: true, throwIfNoEntry: false });
    index.set(rel, `${rec} ${st?.birthtimeNs ?? -1n}`);
  }
}

async function scanWithFind(root: string, options: IndexScanOptions): Promise<StatIndex> {
  const args = [root, '-mindepth', '1', '-printf', FIND_FORMAT];
  const prune = [...(options.noDescend ?? [])];
  if (prune.length > 0) {
    args.push('(');
    prune.forEach((p, i) => args.push(...(i > 0 ? ['-o'] : []), '-path', globLiteral(`${root}/${p}`)));
    args.push(')', '-prune');
  }
  // find writes to a scratch file, not a pipe: a pipe's 64 KiB of buffer makes find and this
  // process take turns (~40% slower on 100k entries); the file is parsed in one pass afterwards.
  const scratch = options.scratchFile;
  const fd = scratch === undefined ? undefined : openSync(scratch, 'w', 0o600);
  const index: StatIndex = new Map();
  try {
    let text = '';
    await new Promise<void>((resolve, reject) => {
      const child = spawn('find', args, { stdio: ['ignore', fd ?? 'pipe', 'pipe'], signal: options.signal });
      let err = '';
      child.stdout?.setEncoding('utf8');
      child.stdout?.on('data', (c: string) => (text = parseRecords(text + c, index)));
      child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        if (code === 0) resolve();
        else reject(new StowageError('snapshot/scan-failed', `cannot scan ${root}: ${err.trim() || `find exited ${code}`}`));
      });
    });
    if (scratch !== undefined) text = parseRecords(readFileSync(scratch, 'utf8'), index);
    if (text !== '') throw new StowageError('snapshot/scan-failed', `cannot scan ${root}: find output ended mid-record`);
  } finally {
    if (fd !== undefined) closeSync(fd);
    if (scratch !== undefined) rmSync(scratch, { force: true });
  }
  addDirBirths(root, index);
  return index;
}

const TYPE_CHAR: Record<number, string> = { 0o100000: 'f', 0o040000: 'd', 0o120000: 'l', 0o020000: 'c', 0o060000: 'b', 0o010000: 'p', 0o140000: 's' };

/** The same index from a synchronous Node walk (no await per entry: several times faster). */
export function scanWithNode(root: string, options: Omit<IndexScanOptions, 'signal'> = {}): StatIndex {
  const index: StatIndex = new Map();
  walkTree(root, options.noDescend ? { noDescend: options.noDescend } : {}, (rel, st) => {
    const type = TYPE_CHAR[Number(st.mode & 0o170000n)] ?? 's';
    let rec = `${type} ${st.mode & 0o7777n} ${st.uid} ${st.gid} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${st.ino}`;
    if (type === 'd') rec += ` ${st.birthtimeNs}`;
    index.set(rel, rec);
  });
  return index;
}

export async function scanIndex(root: string, scanner: IndexScanner, options: IndexScanOptions = {}): Promise<StatIndex> {
  options.signal?.throwIfAborted();
  switch (scanner) {
    case 'find':
      return scanWithFind(root, options);
    case 'node':
      return scanWithNode(root, options.noDescend ? { noDescend: options.noDescend } : {});
    default:
      return assertNever(scanner, 'index scanner');
  }
}

/** The `n`th space-separated field of a record. */
export function recordField(rec: string, n: number): string {
  let s = 0;
  for (let k = 0; k < n; k++) s = rec.indexOf(' ', s) + 1;
  const e = rec.indexOf(' ', s);
  return e < 0 ? rec.slice(s) : rec.slice(s, e);
}

// ---------------------------------------------------------------------------------------------
// The packed index: what the walk snapshotter keeps between steps.

/**
 * A scan kept as the scanner wrote it: NUL-terminated `type mode uid gid size mtime ctime ino path`
 * records in one buffer, in walk order, nothing parsed. Two scans of a mostly unchanged tree are
 * compared run by run of identical bytes (a few memcmp calls cover thousands of records), and only
 * records that differ become strings. A 100k-entry tree is one ~8 MB buffer, not 200k strings in a Map.
 */
export interface PackedIndex {
  readonly records: Buffer;
  /**
   * Birth time (ns, as text) per directory path, where known: find cannot print it, so the walk
   * snapshotter looks it up for the directories it needs (all at prepare, changed ones after).
   */
  readonly dirBirths: Map<string, string>;
}

/** A record whose bytes differ between two packed scans (`old` undefined: the path is new). */
export interface PackedChange {
  path: string;
  /** The record's fields without the path (`recordField` reads them). */
  rec: string;
  old: string | undefined;
}

export interface PackedDiff {
  changed: PackedChange[];
  deleted: string[];
}

/** Splits the record starting at `start` (its NUL at `end`) into fields and path. */
function splitRecord(buf: Buffer, start: number, end: number): { rec: string; path: string } {
  let sp = start;
  for (let k = 0; k < FIELDS; k++) {
    sp = buf.indexOf(0x20, sp) + 1;
    if (sp === 0 || sp > end) throw new StowageError('snapshot/scan-failed', 'malformed index record');
  }
  return { rec: buf.toString('latin1', start, sp - 1), path: buf.toString('utf8', sp, end) };
}

/** Calls `visit` with every record's path and fields. */
export function forEachRecord(index: PackedIndex, visit: (path: string, rec: string) => void): void {
  const buf = index.records;
  for (let start = 0; start < buf.length; ) {
    const end = buf.indexOf(0, start);
    const { rec, path } = splitRecord(buf, start, end);
    visit(path, rec);
    start = end + 1;
  }
}

/** How many bytes from `a[ai]` and `b[bi]` on are identical (exponential, then binary search over memcmp). */
export function identicalRun(a: Buffer, ai: number, b: Buffer, bi: number): number {
  const max = Math.min(a.length - ai, b.length - bi);
  const same = (off: number, len: number): boolean => a.compare(b, bi + off, bi + off + len, ai + off, ai + off + len) === 0;
  let lo = 0;
  let step = 512;
  let hi: number;
  for (;;) {
    const len = Math.min(step, max - lo);
    if (len === 0) return lo;
    if (!same(lo, len)) {
      hi = lo + len;
      break;
    }
    lo += len;
    step *= 2;
  }
  // [0, lo) is identical, [0, hi) is not.
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (same(lo, mid - lo)) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * What differs between two packed scans of the same tree by the same scanner. Runs of identical
 * records (at aligned record starts) are skipped without reading them; where the walk orders differ
 * (entries added or removed shift everything after them) each side's record waits in a small map
 * until its path turns up on the other side, so the cost grows with the changes, not the tree.
 */
export function diffPacked(old: PackedIndex, now: PackedIndex): PackedDiff {
  const a = old.records;
  const b = now.records;
  const changed: PackedChange[] = [];
  const waitingOld = new Map<string, string>();
  const waitingNew = new Map<string, string>();
  const pair = (path: string, rec: string, o: string): void => {
    if (rec !== o) changed.push({ path, rec, old: o });
  };
  const takeOld = (path: string, rec: string): void => {
    const n = waitingNew.get(path);
    if (n === undefined) waitingOld.set(path, rec);
    else {
      waitingNew.delete(path);
      pair(path, n, rec);
    }
  };
  const takeNew = (path: string, rec: string): void => {
    const o = waitingOld.get(path);
    if (o === undefined) waitingNew.set(path, rec);
    else {
      waitingOld.delete(path);
      pair(path, rec, o);
    }
  };
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const run = identicalRun(a, i, b, j);
    if (run > 0) {
      // Skip the whole records inside the identical run.
      const lastEnd = a.lastIndexOf(0, i + run - 1);
      if (lastEnd >= i) {
        const skip = lastEnd + 1 - i;
        i += skip;
        j += skip;
        continue;
      }
    }
    const ae = a.indexOf(0, i);
    const be = b.indexOf(0, j);
    const o = splitRecord(a, i, ae);
    const n = splitRecord(b, j, be);
    if (o.path === n.path) {
      pair(n.path, n.rec, o.rec);
      i = ae + 1;
      j = be + 1;
    } else if (waitingOld.has(n.path)) {
      takeNew(n.path, n.rec);
      j = be + 1;
    } else if (waitingNew.has(o.path)) {
      takeOld(o.path, o.rec);
      i = ae + 1;
    } else {
      waitingOld.set(o.path, o.rec);
      waitingNew.set(n.path, n.rec);
      i = ae + 1;
      j = be + 1;
    }
  }
  for (; i < a.length; ) {
    const ae = a.indexOf(0, i);
    const o = splitRecord(a, i, ae);
    takeOld(o.path, o.rec);
    i = ae + 1;
  }
  for (; j < b.length; ) {
    const be = b.indexOf(0, j);
    const n = splitRecord(b, j, be);
    takeNew(n.path, n.rec);
    j = be + 1;
  }
  for (const [path, rec] of waitingNew) changed.push({ path, rec, old: undefined });
  return { changed, deleted: [...waitingOld.keys()] };
}

async function packedWithFind(root: string, options: IndexScanOptions): Promise<PackedIndex> {
  // find writes to a scratch file, not a pipe: a pipe's 64 KiB of buffer makes find and this
  // process take turns (~40% slower on 100k entries); the file is read in one call afterwards.
  const scratch = options.scratchFile;
  const fd = scratch === undefined ? undefined : openSync(scratch, 'w', 0o600);
  try {
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve, reject) => {
      // No -prune for the ignored paths: any -path test in the expression costs find ~50% more CPU
      // over a 100k-entry tree, while the ignored subtrees of a rootfs are nearly empty (their
      // contents are mounted inside the sandbox, not here); the caller drops what lies inside them.
      // -xdev keeps a mount left behind in the rootfs from being walked. Relative paths from the
      // root's own cwd are shorter for find to build.
      const child = spawn('find', ['.', '-xdev', '-mindepth', '1', '-printf', FIND_FORMAT], { cwd: root, stdio: ['ignore', fd ?? 'pipe', 'pipe'], signal: options.signal });
      let err = '';
      child.stdout?.on('data', (c: Buffer) => chunks.push(c));
      child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        if (code === 0) resolve();
        else reject(new StowageError('snapshot/scan-failed', `cannot scan ${root}: ${err.trim() || `find exited ${code}`}`));
      });
    });
    const records = scratch === undefined ? Buffer.concat(chunks) : readFileSync(scratch);
    if (records.length > 0 && records[records.length - 1] !== 0) throw new StowageError('snapshot/scan-failed', `cannot scan ${root}: find output ended mid-record`);
    return { records, dirBirths: new Map() };
  } finally {
    if (fd !== undefined) closeSync(fd);
    if (scratch !== undefined) rmSync(scratch, { force: true });
  }
}

function packedWithNode(root: string, noDescend: ReadonlySet<string> | undefined): PackedIndex {
  const parts: string[] = [];
  const dirBirths = new Map<string, string>();
  walkTree(root, noDescend ? { noDescend } : {}, (rel, st) => {
    const type = TYPE_CHAR[Number(st.mode & 0o170000n)] ?? 's';
    parts.push(`${type} ${st.mode & 0o7777n} ${st.uid} ${st.gid} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${st.ino} ${rel}\0`);
    if (type === 'd') dirBirths.set(rel, String(st.birthtimeNs));
  });
  return { records: Buffer.from(parts.join(''), 'utf8'), dirBirths };
}

/**
 * A packed scan of `root` (directory births: all of them from the Node walk, none from find).
 * `noDescend` subtrees may or may not be listed (find lists them, the Node walk does not): callers
 * drop records inside them.
 */
export async function scanPacked(root: string, scanner: IndexScanner, options: IndexScanOptions = {}): Promise<PackedIndex> {
  options.signal?.throwIfAborted();
  switch (scanner) {
    case 'find':
      return packedWithFind(root, options);
    case 'node':
      return packedWithNode(root, options.noDescend);
    default:
      return assertNever(scanner, 'index scanner');
  }
}

/** A directory's birth time as the index records it ('-1' when it is gone). */
export function dirBirth(root: string, rel: string): string {
  const st = lstatSync(`${root}/${rel}`, { bigint: true, throwIfNoEntry: false });
  return String(st?.birthtimeNs ?? -1n);
}
