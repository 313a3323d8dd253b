/**
 * Snapshots of the build root: the walk snapshotter's stat index (src/engine/snapshot), taken over the
 * build root with the Node walker only and honouring the ignore list, so it spawns nothing (GNU find
 * and the python3 xattr helper may be gone once an image is unpacked into `/`). What that costs:
 * extended attributes written by steps (e.g. `setcap`) are not captured.
 *
 * Unlike the walk snapshotter, an ignored path never enters a layer, not even as a new file: under
 * --isolation=none the ignore list is what belongs to the container, not to the image (Kaniko).
 */
import { ancestorsOf, type ChangeEntry, type ChangeSet } from '../layer/changeset.js';
import { lstatRec, toChangeEntry } from '../snapshot/scan.js';
import { REC_BIRTH, REC_INO, recordField, scanWithNode, type StatIndex } from '../snapshot/stat-index.js';
import { isIgnored } from './ignore-list.js';

/** The stat index of everything under `root` outside the ignore list. */
export function indexRoot(root: string, ignore: ReadonlySet<string>): StatIndex {
  const index = scanWithNode(root, { noDescend: ignore });
  for (const rel of [...index.keys()]) if (ignore.has(rel)) index.delete(rel);
  return index;
}

/** What changed under `root` since `old`; returns the change set and the new index. */
export function diffRoot(root: string, old: StatIndex, ignore: ReadonlySet<string>, stepIgnore: ReadonlySet<string>): { changes: ChangeSet; index: StatIndex } {
  const all = stepIgnore.size === 0 ? ignore : new Set([...ignore, ...stepIgnore]);
  const now = indexRoot(root, all);
  const changed: string[] = [];
  const opaqueDirs: string[] = [];
  const deletions: string[] = [];
  for (const [rel, rec] of now) {
    const o = old.get(rel);
    if (o === rec) continue;
    changed.push(rel);
    const isDir = rec.charCodeAt(0) === 100; /* d */
    // A directory that replaced something else hides all of it (as overlayfs marks it opaque).
    if (o !== undefined && isDir && (o.charCodeAt(0) !== 100 || recordField(o, REC_INO) !== recordField(rec, REC_INO) || recordField(o, REC_BIRTH) !== recordField(rec, REC_BIRTH))) {
      opaqueDirs.push(rel);
    }
  }
  for (const rel of old.keys()) if (!now.has(rel) && !isIgnored(rel, all)) deletions.push(rel);
  // A step's own ignored paths (mount targets) stay in the index as they were, so the next step
  // does not see them as new or deleted.
  if (stepIgnore.size > 0) for (const [rel, rec] of old) if (!now.has(rel) && isIgnored(rel, stepIgnore) && !isIgnored(rel, ignore)) now.set(rel, rec);
  const paths = new Set(changed);
  for (const p of [...changed, ...deletions]) for (const a of ancestorsOf(p)) paths.add(a);
  const entries: ChangeEntry[] = [];
  for (const p of [...paths].filter((x) => now.has(x))) {
    const host = root === '/' ? `/${p}` : `${root}/${p}`;
    const r = lstatRec(host);
    if (r === undefined) continue;
    const e = toChangeEntry(p, host, r, undefined);
    if (e) entries.push(e);
  }
  return { changes: { entries, deletions, opaqueDirs }, index: now };
}
