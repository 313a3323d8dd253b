/**
 * `RUN --mount=` CSV parsing and validation (BuildKit instructions/commands_runmount.go, A21).
 */
import type { CacheSharing, MountSpec, MountType } from '../types.js';
import { suggest as didYouMean } from '../suggest.js';
import { InstructionError } from './common.js';

/** The one mount error that does not depend on expansion. */
export const MOUNT_FROM_EXPANSION = 'dockerfile/mount-from-expansion';

const MOUNT_TYPES: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];

/** encoding/csv-style field split of one record (quoted fields, `""` escapes). */
export function csvFields(value: string): string[] {
  const fields: string[] = [];
  let i = 0;
  if (value === '') return [];
  for (;;) {
    let field = '';
    if (value[i] === '"') {
      i++;
      for (;;) {
        if (i >= value.length) throw new InstructionError(`failed to parse csv mounts: extraneous or missing " in quoted-field`, 'dockerfile/bad-mount');
        const c = value[i] as string;
        if (c === '"') {
          if (value[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += c;
        i++;
      }
      if (i < value.length && value[i] !== ',') throw new InstructionError(`failed to parse csv mounts: extraneous or missing " in quoted-field`, 'dockerfile/bad-mount');
    } else {
      while (i < value.length && value[i] !== ',') {
        if (value[i] === '"') throw new InstructionError(`failed to parse csv mounts: bare " in non-quoted-field`, 'dockerfile/bad-mount');
        field += value[i];
        i++;
      }
    }
    fields.push(field);
    if (i >= value.length) break;
    i++; // the comma
  }
  return fields;
}

function parseBool(v: string): boolean | undefined {
  // Go strconv.ParseBool
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

/** docker/go-units RAMInBytes. */
export function ramInBytes(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (m === null) return undefined;
  const n = Number.parseFloat(m[1] as string);
  const mult: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.trunc(n * (m[2] ? (mult[(m[2] as string).toLowerCase()] as number) : 1));
}

/**
 * Parse one `--mount` value. With `expand` (the builder's stage expander) every value is expanded
 * and fully validated; without it, values are taken as written (`from=` still must not contain `$`).
 */
export function parseMount(raw: string, expand?: (word: string) => string): MountSpec {
  const m: MountSpec = { raw, type: 'bind', readOnly: false };
  let roAuto = true;
  for (const field of csvFields(raw)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    let value = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) {
      switch (key) {
        case 'readonly':
        case 'ro':
          m.readOnly = true;
          roAuto = false;
          continue;
        case 'readwrite':
        case 'rw':
          m.readOnly = false;
          roAuto = false;
          continue;
        case 'required':
          if (m.type === 'secret' || m.type === 'ssh') {
            m.required = true;
            continue;
          }
          throw new InstructionError(`unexpected key '${key}' for mount type '${m.type}'`, 'dockerfile/bad-mount');
        default:
          throw new InstructionError(`invalid field '${field}' must be a key=value pair`, 'dockerfile/bad-mount');
      }
    }
    if (key === 'from' && value.includes('$')) {
      throw new InstructionError(`'${key}' doesn't support variable expansion, define alias stage instead`, MOUNT_FROM_EXPANSION);
    }
    if (expand !== undefined) value = expand(value);
    const bad = (what: string) => new InstructionError(what, 'dockerfile/bad-mount');
    switch (key) {
      case 'type': {
        const t = value.toLowerCase() as MountType;
        if (!MOUNT_TYPES.includes(t)) {
          const s = didYouMean(value, MOUNT_TYPES);
          throw bad(`unsupported mount type "${value}"${s ? ` (did you mean ${s}?)` : ''}`);
        }
        m.type = t;
        break;
      }
      case 'from':
        m.from = value;
        break;
      case 'source':
      case 'src':
        m.source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = value;
        break;
      case 'readonly':
      case 'ro':
      case 'readwrite':
      case 'rw': {
        const b = parseBool(value);
        if (b === undefined) throw bad(`invalid value for ${key}: ${value}`);
        m.readOnly = key.startsWith('r') && (key === 'ro' || key === 'readonly') ? b : !b;
        roAuto = false;
        break;
      }
      case 'required': {
        if (m.type !== 'secret' && m.type !== 'ssh') throw bad(`unexpected key '${key}' for mount type '${m.type}'`);
        const b = parseBool(value);
        if (b === undefined) throw bad(`invalid value for ${key}: ${value}`);
        m.required = b;
        break;
      }
      case 'size': {
        if (m.type !== 'tmpfs') throw bad(`unexpected key '${key}' for mount type '${m.type}'`);
        const n = ramInBytes(value);
        if (n === undefined) throw bad(`invalid value for ${key}: ${value}`);
        m.size = n;
        break;
      }
      case 'id':
        m.id = value;
        break;
      case 'sharing': {
        const v = value.toLowerCase();
        if (v !== '') {
          if (v !== 'shared' && v !== 'private' && v !== 'locked') throw bad(`unsupported sharing value "${value}"`);
          m.sharing = v as CacheSharing;
        }
        break;
      }
      case 'mode': {
        if (!/^[0-7]+$/.test(value) || Number.parseInt(value, 8) > 0xffffffff) throw bad(`invalid value ${value} for mode`);
        m.mode = Number.parseInt(value, 8);
        break;
      }
      case 'uid':
      case 'gid': {
        if (!/^\d+$/.test(value) || Number(value) > 0xffffffff) throw bad(`invalid value ${value} for ${key}`);
        m[key] = Number(value);
        break;
      }
      case 'env':
        m.env = value;
        break;
      default:
        throw bad(`unexpected key '${key}' in '${field}'`);
    }
  }
  const fileInfoAllowed = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfoAllowed) {
    for (const k of ['mode', 'uid', 'gid'] as const) {
      if (m[k] !== undefined) throw new InstructionError(`${k} not allowed for "${m.type}" type mounts`, 'dockerfile/bad-mount');
    }
  }
  if (roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.sharing !== undefined && m.type !== 'cache') throw new InstructionError(`invalid cache sharing set for ${m.type} mount`, 'dockerfile/bad-mount');
  if (m.type === 'secret') {
    if (m.from !== undefined && m.from !== '') throw new InstructionError('secret mount should not have a from', 'dockerfile/bad-mount');
    if ((m.source ?? '') === '' && (m.target ?? '') === '' && (m.id ?? '') === '') {
      throw new InstructionError('invalid secret mount. one of source, target required', 'dockerfile/bad-mount');
    }
    if ((m.source ?? '') !== '' && (m.id ?? '') !== '') throw new InstructionError("both source and id can't be set", 'dockerfile/bad-mount');
  }
  if (m.target === '/') throw new InstructionError('mount target cannot be /', 'dockerfile/bad-mount');
  return m;
}

/**
 * The defaults BuildKit fills in at dispatch time (A21), given the WORKDIR for relative targets and
 * the mount's position among the RUN's ssh mounts.
 */
export function withMountDefaults(m: MountSpec, options: { workdir: string; sshIndex?: number }): MountSpec {
  const out: MountSpec = { ...m };
  if (out.source === undefined && out.id !== undefined && m.type === 'secret') out.source = out.id;
  if (out.target !== undefined && !out.target.startsWith('/')) {
    out.target = posixJoin(options.workdir, out.target);
  }
  switch (out.type) {
    case 'cache':
      if (out.id === undefined || out.id === '') out.id = out.target !== undefined ? posixJoin('/', out.target) : '';
      if (out.sharing === undefined) out.sharing = 'shared';
      if (out.mode === undefined) out.mode = 0o755;
      out.uid ??= 0;
      out.gid ??= 0;
      break;
    case 'secret': {
      if ((out.id ?? '') === '') {
        out.id = out.source !== undefined && out.source !== '' ? out.source : baseName(out.target ?? '');
      }
      if ((out.target ?? '') === '' && out.env === undefined) out.target = `/run/secrets/${out.id}`;
      out.required ??= false;
      out.mode ??= 0o400;
      out.uid ??= 0;
      out.gid ??= 0;
      break;
    }
    case 'ssh':
      if ((out.id ?? '') === '') out.id = 'default';
      if ((out.target ?? '') === '') out.target = `/run/buildkit/ssh_agent.${options.sshIndex ?? 0}`;
      out.mode ??= 0o600;
      out.uid ??= 0;
      out.gid ??= 0;
      break;
    case 'bind':
    case 'tmpfs':
      break;
  }
  return out;
}

function baseName(p: string): string {
  const parts = p.split('/').filter((s) => s !== '');
  return parts[parts.length - 1] ?? '';
}

/** path.posix.join + clean, always absolute. */
function posixJoin(a: string, b: string): string {
  const parts: string[] = [];
  for (const seg of `${a}/${b}`.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return '/' + parts.join('/');
}
