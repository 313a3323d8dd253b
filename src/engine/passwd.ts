/**
 * USER and COPY --chown resolution against the *stage's* /etc/passwd and /etc/group (DOCKERFILE.md
 * A13, A10), never the build host's. The files are located with in-root resolution and opened with
 * O_NOFOLLOW, so a symlinked /etc/passwd in a hostile image cannot make us read a host file.
 *
 * Parsing and the lookup rules are pure (`parsePasswd`, `parseGroup`, `resolveUserIn`,
 * `resolveChownIn`); only `readRootfsUserFiles` touches the filesystem.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { StowageError } from '../util/errors.js';
import { resolveInRoot } from './sandbox/in-root.js';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Extra groups for setgroups(2); empty when the spec named a group explicitly (A13). */
  supplementaryGids: number[];
  /** From the passwd entry; `/` when there is none (what runc sets HOME to). */
  home: string;
}

export interface ResolvedOwner {
  uid: number;
  gid: number;
}

/** The two files as read from a rootfs; `undefined` when the file does not exist there. */
export interface RootfsUserFiles {
  passwd: string | undefined;
  group: string | undefined;
}

const MAX_ID = 0xffffffff - 1; // 4294967295 is (uid_t)-1, "no change" for chown(2)
/** /etc/passwd larger than this is not a passwd file we should parse. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/** Parses passwd(5) lines; malformed lines are skipped like libcontainer's parser does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    const uid = parseId(f[2] ?? '');
    const gid = parseId(f[3] ?? '');
    if (!f[0] || uid === undefined || gid === undefined) continue;
    out.push({ name: f[0], uid, gid, home: f[5] ?? '', shell: f[6] ?? '' });
  }
  return out;
}

/** Parses group(5) lines. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    const gid = parseId(f[2] ?? '');
    if (!f[0] || gid === undefined) continue;
    const members = (f[3] ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '');
    out.push({ name: f[0], gid, members });
  }
  return out;
}

/** A decimal id in range, or undefined. */
export function parseId(s: string): number | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) && n <= MAX_ID ? n : undefined;
}

/**
 * USER resolution (A13, libcontainer GetExecUser): `uid:gid` numeric is a fast path with no
 * supplementary groups; names are looked up; a numeric uid without entry is allowed (gid 0);
 * without an explicit group, supplementary groups come from /etc/group membership; an explicit
 * group means only that group.
 */
export function resolveUserIn(files: RootfsUserFiles, userSpec: string): ResolvedUser {
  const spec = userSpec.trim();
  const colon = spec.indexOf(':');
  const userPart = colon < 0 ? spec : spec.slice(0, colon);
  const groupPart = colon < 0 ? undefined : spec.slice(colon + 1);
  const users = files.passwd === undefined ? [] : parsePasswd(files.passwd);
  const groups = files.group === undefined ? [] : parseGroup(files.group);

  const numericUid = userPart === '' ? 0 : parseId(userPart);
  let entry: PasswdEntry | undefined;
  let uid: number;
  let gid: number;
  if (numericUid !== undefined) {
    uid = numericUid;
    entry = users.find((u) => u.uid === uid);
    gid = entry?.gid ?? 0;
  } else {
    entry = users.find((u) => u.name === userPart);
    if (!entry) {
      if (userPart === 'root') {
        // `root` always means 0, even in an image without /etc/passwd (scratch + a static binary).
        uid = 0;
        gid = 0;
      } else {
        throw unknownName('user', userPart, '/etc/passwd', files.passwd === undefined);
      }
    } else {
      uid = entry.uid;
      gid = entry.gid;
    }
  }
  const home = entry?.home || '/';

  if (groupPart !== undefined && groupPart !== '') {
    // Explicit group: only that group, no supplementary groups (A13). Numeric fast path included.
    return { uid, gid: resolveGroupIn(groups, groupPart, files.group === undefined), supplementaryGids: [], home };
  }
  const name = entry?.name;
  const supplementaryGids = name === undefined ? [] : uniq(groups.filter((g) => g.members.includes(name)).map((g) => g.gid));
  return { uid, gid, supplementaryGids, home };
}

/**
 * COPY/ADD --chown (A10): numbers as-is; a numeric user alone gives gid = uid; a user name alone
 * gives its primary gid; `root` is always 0; the group comes from /etc/group; unknown names fail
 * (the reference's rule, not BuildKit's silent 0 — see A26).
 */
export function resolveChownIn(files: RootfsUserFiles, spec: string): ResolvedOwner {
  const s = spec.trim();
  if (s === '') throw new StowageError('engine/invalid-chown', 'empty --chown value', { hint: 'use --chown=<user>[:<group>] with names or numeric ids' });
  const colon = s.indexOf(':');
  const userPart = colon < 0 ? s : s.slice(0, colon);
  const groupPart = colon < 0 ? undefined : s.slice(colon + 1);
  const users = files.passwd === undefined ? [] : parsePasswd(files.passwd);
  const groups = files.group === undefined ? [] : parseGroup(files.group);

  let uid: number;
  let primaryGid: number;
  const numericUid = parseId(userPart);
  if (numericUid !== undefined) {
    uid = numericUid;
    primaryGid = numericUid;
  } else if (userPart === 'root') {
    uid = 0;
    primaryGid = 0;
  } else {
    const entry = users.find((u) => u.name === userPart);
    if (!entry) throw unknownName('user', userPart, '/etc/passwd', files.passwd === undefined);
    uid = entry.uid;
    primaryGid = entry.gid;
  }
  if (groupPart === undefined || groupPart === '') return { uid, gid: primaryGid };
  return { uid, gid: resolveGroupIn(groups, groupPart, files.group === undefined) };
}

function resolveGroupIn(groups: GroupEntry[], groupPart: string, fileMissing: boolean): number {
  const numeric = parseId(groupPart);
  if (numeric !== undefined) return numeric;
  const g = groups.find((x) => x.name === groupPart);
  if (g) return g.gid;
  if (groupPart === 'root') return 0;
  throw unknownName('group', groupPart, '/etc/group', fileMissing);
}

function unknownName(kind: 'user' | 'group', name: string, file: string, fileMissing: boolean): StowageError {
  const where = fileMissing ? `the stage's rootfs has no ${file}` : `no entry in ${file} of the stage's rootfs`;
  return new StowageError(`engine/unknown-${kind}`, `unknown ${kind} ${JSON.stringify(name)}: ${where}`, {
    hint:
      kind === 'user'
        ? `create the user in an earlier step (e.g. RUN adduser -D ${name}) or use a numeric uid[:gid]`
        : `create the group in an earlier step (e.g. RUN addgroup ${name}) or use a numeric gid`,
  });
}

function uniq(xs: number[]): number[] {
  return [...new Set(xs)];
}

/** Reads one file of the rootfs, resolved in-root and opened without following a final symlink. */
export async function readRootfsFile(rootfs: string, inRootPath: string): Promise<string | undefined> {
  const resolved = await resolveInRoot(rootfs, inRootPath);
  if (!resolved.exists) return undefined;
  let fh;
  try {
    fh = await open(resolved.hostPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP') return undefined;
    throw e;
  }
  try {
    const st = await fh.stat();
    // A FIFO or device named /etc/passwd must not hang or feed us a disk.
    if (!st.isFile()) return undefined;
    if (st.size > MAX_FILE_BYTES) {
      throw new StowageError('engine/user-file-too-large', `${inRootPath} in the stage's rootfs is ${st.size} bytes; refusing to parse it`);
    }
    return await fh.readFile({ encoding: 'utf8' });
  } finally {
    await fh.close();
  }
}

export async function readRootfsUserFiles(rootfs: string): Promise<RootfsUserFiles> {
  const [passwd, group] = await Promise.all([readRootfsFile(rootfs, '/etc/passwd'), readRootfsFile(rootfs, '/etc/group')]);
  return { passwd, group };
}

/** USER resolution against the rootfs's own files (A13). */
export async function resolveUser(rootfs: string, userSpec: string): Promise<ResolvedUser> {
  const spec = userSpec.trim();
  const fast = numericPair(spec);
  // `uid:gid` numeric is libcontainer's fast path: no file is read, no supplementary groups; HOME
  // still comes from the passwd entry when one matches the uid.
  if (fast) {
    const files = await readRootfsUserFiles(rootfs);
    const entry = files.passwd === undefined ? undefined : parsePasswd(files.passwd).find((u) => u.uid === fast.uid);
    return { uid: fast.uid, gid: fast.gid, supplementaryGids: [], home: entry?.home || '/' };
  }
  return resolveUserIn(await readRootfsUserFiles(rootfs), spec);
}

/** COPY --chown resolution against the destination stage's files (A10). */
export async function resolveChown(rootfs: string, spec: string): Promise<ResolvedOwner> {
  return resolveChownIn(await readRootfsUserFiles(rootfs), spec);
}

function numericPair(spec: string): { uid: number; gid: number } | undefined {
  const m = /^([0-9]+):([0-9]+)$/.exec(spec);
  if (!m) return undefined;
  const uid = parseId(m[1]!);
  const gid = parseId(m[2]!);
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
}
