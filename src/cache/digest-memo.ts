/**
 * Content digests of a build context's files, remembered between runs under the cache dir and
 * trusted while the file's stat is unchanged (device, inode, size, mtime and ctime) — BuildKit's
 * content-hash cache and git's index do the same. A warm rebuild must still stat every file the
 * key covers, but reads none that did not change: with 20,000 files / 50 MB of context that was
 * ~90 ms of reading per run.
 *
 * ctime cannot be set by user tools, so content changed later shows as a new ctime — unless the
 * change falls in the same clock tick as the stat taken when the digest was recorded (file times
 * have the kernel's tick as granularity). Like git's "racily clean" entries, a file changed within
 * the last RACY_MS when it was hashed is not remembered, and is hashed again next time.
 *
 * One JSON file per context directory, written whole (temp + rename) when the context is closed;
 * anything unreadable or of another version is ignored: the digests are computed again.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';

const VERSION = 1;
const RACY_MS = 2_000;
/** Beyond this many entries the file is started afresh (a context that churns names forever). */
const MAX_ENTRIES = 500_000;

/** [dev, ino, size, mtimeMs, ctimeMs, sha256 hex] */
type Entry = [number, number, number, number, number, string];

export interface FileDigestMemo {
  /** The recorded sha256 (hex) of the file at `rel`, if its stat is the one it was recorded with. */
  get(rel: string, st: Stats): string | undefined;
  /** Records a digest just computed from the file's content (unless the file changed too recently). */
  set(rel: string, st: Stats, hex: string): void;
  /** Writes what changed; failures are ignored (the memo only saves work). */
  save(): void;
}

export function openDigestMemo(cacheDir: string, contextDir: string, now: () => number = Date.now): FileDigestMemo {
  const dir = join(cacheDir, 'context-digests');
  const file = join(dir, `${createHash('sha256').update(contextDir).digest('hex')}.json`);
  let entries: Record<string, Entry> = Object.create(null) as Record<string, Entry>;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { v?: unknown; dir?: unknown; entries?: unknown };
    if (parsed.v === VERSION && parsed.dir === contextDir && parsed.entries && typeof parsed.entries === 'object') {
      entries = Object.assign(Object.create(null) as Record<string, Entry>, parsed.entries as Record<string, Entry>);
    }
  } catch {
    // none yet, or unreadable: start empty
  }
  let dirty = false;
  return {
    get(rel, st) {
      const e = entries[rel];
      if (!Array.isArray(e) || e.length !== 6) return undefined;
      return e[0] === st.dev && e[1] === st.ino && e[2] === st.size && e[3] === st.mtimeMs && e[4] === st.ctimeMs && typeof e[5] === 'string' ? e[5] : undefined;
    },
    set(rel, st, hex) {
      if (now() - Math.max(st.mtimeMs, st.ctimeMs) < RACY_MS) return;
      entries[rel] = [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs, hex];
      dirty = true;
    },
    save() {
      if (!dirty) return;
      dirty = false;
      const all = Object.keys(entries).length > MAX_ENTRIES ? {} : entries;
      const temp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
      try {
        mkdirSync(dir, { recursive: true });
        writeFileSync(temp, JSON.stringify({ v: VERSION, dir: contextDir, entries: all }));
        renameSync(temp, file);
      } catch {
        rmSync(temp, { force: true });
      }
    },
  };
}
