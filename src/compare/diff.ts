/**
 * What differs between the image stowage built and the one Buildah built from the same Dockerfile:
 * the flattened filesystems entry by entry and the config fields users observe. Pure: the inputs
 * are already-read entries and configs; `classify` then marks each difference as known (with the
 * reason from KNOWN_DIFFERENCES) or unexpected.
 */
import type { ContainerConfig } from '../image/types.js';
import type { FsEntry } from './flatten.js';

/** The config fields the harness compares, in report order. */
export const COMPARED_CONFIG_FIELDS = [
  'Env',
  'Cmd',
  'Entrypoint',
  'WorkingDir',
  'User',
  'ExposedPorts',
  'Volumes',
  'Labels',
  'StopSignal',
  'Healthcheck',
  'OnBuild',
  'Shell',
] as const;
export type ComparedConfigField = (typeof COMPARED_CONFIG_FIELDS)[number];

export type NormalizedConfig = Partial<Record<ComparedConfigField, unknown>>;

export type Difference =
  | { kind: 'only-in-stowage'; path: string; stowage: FsEntry }
  | { kind: 'only-in-buildah'; path: string; buildah: FsEntry }
  | { kind: 'entry'; path: string; field: keyof FsEntry; stowage: unknown; buildah: unknown }
  /** A regular file whose bytes differ (size and digest in one line, with the text when it is short). */
  | { kind: 'content'; path: string; stowage: FsEntry; buildah: FsEntry }
  | { kind: 'config'; field: ComparedConfigField; key?: string; stowage: unknown; buildah: unknown };

export interface ClassifiedDifference {
  difference: Difference;
  /** The KNOWN_DIFFERENCES reason, or undefined when nobody expected it. */
  known?: string;
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v as object).length === 0;
  return false;
}

/**
 * Both builders write "not set" in several ways (absent, null, [], {}); they all mean the same to a
 * runtime, so they become absent. `WorkingDir: ""` is `/` to a runtime. Healthcheck durations that
 * are 0 mean "runtime default" and are dropped, as are Buildah's zero `StartInterval`.
 */
export function normalizeConfig(config: ContainerConfig | undefined): NormalizedConfig {
  const raw = (config ?? {}) as Record<string, unknown>;
  const out: NormalizedConfig = {};
  for (const field of COMPARED_CONFIG_FIELDS) {
    let v = raw[field];
    if (field === 'WorkingDir' && (v === '' || v === undefined)) v = '/';
    if (field === 'Healthcheck' && v && typeof v === 'object') {
      v = Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== 0 && !isEmpty(x)));
    }
    if (!isEmpty(v)) out[field] = v;
  }
  return out;
}

function envMap(env: unknown): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of Array.isArray(env) ? (env as string[]) : []) {
    const i = kv.indexOf('=');
    m.set(i < 0 ? kv : kv.slice(0, i), i < 0 ? '' : kv.slice(i + 1));
  }
  return m;
}

/** JSON with object keys sorted, so `{a,b}` equals `{b,a}` (builders order Healthcheck keys differently). */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  );
}

function same(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** Config differences; keyed fields (Env, Labels, ExposedPorts, Volumes) are compared per key. */
export function diffConfigs(stowage: NormalizedConfig, buildah: NormalizedConfig): Difference[] {
  const out: Difference[] = [];
  for (const field of COMPARED_CONFIG_FIELDS) {
    const s = stowage[field];
    const b = buildah[field];
    switch (field) {
      case 'Env': {
        const sm = envMap(s);
        const bm = envMap(b);
        for (const key of [...new Set([...sm.keys(), ...bm.keys()])].sort()) {
          if (sm.get(key) !== bm.get(key)) out.push({ kind: 'config', field, key, stowage: sm.get(key), buildah: bm.get(key) });
        }
        break;
      }
      case 'Labels':
      case 'ExposedPorts':
      case 'Volumes': {
        const so = (s ?? {}) as Record<string, unknown>;
        const bo = (b ?? {}) as Record<string, unknown>;
        for (const key of [...new Set([...Object.keys(so), ...Object.keys(bo)])].sort()) {
          if (!same(so[key], bo[key])) out.push({ kind: 'config', field, key, stowage: so[key], buildah: bo[key] });
        }
        break;
      }
      default:
        if (!same(s, b)) out.push({ kind: 'config', field, stowage: s, buildah: b });
    }
  }
  return out;
}

const ENTRY_FIELDS: readonly (keyof FsEntry)[] = ['mode', 'uid', 'gid', 'linkTarget', 'device', 'xattrs', 'hardlinks'];

/** Filesystem differences between two sorted entry lists. */
export function diffFilesystems(stowage: readonly FsEntry[], buildah: readonly FsEntry[]): Difference[] {
  const out: Difference[] = [];
  const bm = new Map(buildah.map((e) => [e.path, e]));
  const sm = new Map(stowage.map((e) => [e.path, e]));
  for (const path of [...new Set([...sm.keys(), ...bm.keys()])].sort()) {
    const s = sm.get(path);
    const b = bm.get(path);
    if (s && !b) {
      out.push({ kind: 'only-in-stowage', path, stowage: s });
      continue;
    }
    if (b && !s) {
      out.push({ kind: 'only-in-buildah', path, buildah: b });
      continue;
    }
    // Both present: one line per differing field, after the type (a type change makes the rest noise).
    if (s!.type !== b!.type) {
      out.push({ kind: 'entry', path, field: 'type', stowage: s!.type, buildah: b!.type });
      continue;
    }
    if (s!.size !== b!.size || s!.sha256 !== b!.sha256) out.push({ kind: 'content', path, stowage: s!, buildah: b! });
    for (const field of ENTRY_FIELDS) {
      if (!same(s![field], b![field])) out.push({ kind: 'entry', path, field, stowage: s![field], buildah: b![field] });
    }
  }
  return out;
}

/** The context a known-difference matcher may look at besides the difference itself. */
export interface CaseContext {
  /** The case name (fixture directory name), for entries that apply to one case only. */
  caseName: string;
  dockerfile: string;
  /** Both normalised configs, for matchers that judge a key against the whole field. */
  stowageConfig: NormalizedConfig;
  buildahConfig: NormalizedConfig;
}


function show(v: unknown): string {
  return v === undefined ? '(unset)' : JSON.stringify(v);
}

function showEntry(e: FsEntry): string {
  const what = e.type === 'file' ? `file ${e.size}B` : e.type === 'symlink' ? `symlink -> ${e.linkTarget}` : e.type;
  return `${what} 0${e.mode.toString(8)} ${e.uid}:${e.gid}`;
}

export function describeDifference(d: Difference): string {
  switch (d.kind) {
    case 'only-in-stowage':
      return `${d.path}: only in stowage (${showEntry(d.stowage)})`;
    case 'only-in-buildah':
      return `${d.path}: only in buildah (${showEntry(d.buildah)})`;
    case 'entry': {
      const fmt = (v: unknown) => (d.field === 'mode' && typeof v === 'number' ? `0${v.toString(8)}` : d.field === 'uid' || d.field === 'gid' || d.field === 'size' ? String(v) : show(v));
      return `${d.path}: ${d.field} stowage=${fmt(d.stowage)} buildah=${fmt(d.buildah)}`;
    }
    case 'content': {
      const p = (e: FsEntry) => (e.preview !== undefined ? JSON.stringify(e.preview) : `${e.size}B sha256:${e.sha256?.slice(0, 12)}`);
      return `${d.path}: content stowage=${p(d.stowage)} buildah=${p(d.buildah)}`;
    }
    case 'config':
      return `config ${d.field}${d.key !== undefined ? `[${d.key}]` : ''}: stowage=${JSON.stringify(d.stowage) ?? '(unset)'} buildah=${JSON.stringify(d.buildah) ?? '(unset)'}`;
  }
}

/** The readable report for one Dockerfile: `identical`, or one line per difference. */
export function renderReport(title: string, classified: readonly ClassifiedDifference[], notes: readonly string[] = []): string {
  const lines = [`== ${title}`];
  for (const n of notes) lines.push(`   note: ${n}`);
  if (classified.length === 0) lines.push('   identical');
  for (const c of classified) lines.push(`   ${c.known !== undefined ? `known: ${c.known}` : 'UNEXPECTED'}  ${describeDifference(c.difference)}`);
  return lines.join('\n') + '\n';
}
