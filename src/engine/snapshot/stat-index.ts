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
