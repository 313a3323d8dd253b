/**
 * POSIX ustar + PAX headers, written byte-exactly (tar-stream cannot write sub-second mtimes or
 * binary xattrs deterministically). Pure: bytes in, bytes out.
 */
import { StowageError } from '../../util/errors.js';

export const BLOCK = 512;

export type TarTypeFlag = '0' | '1' | '2' | '3' | '4' | '5' | '6' | 'x' | 'g' | 'L' | 'K';

export interface TarHeader {
  /** Entry name; directories end in `/`. */
  name: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  linkname: string;
  devMajor: number;
  devMinor: number;
  xattrs: Record<string, Buffer>;
}

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

function writeString(buf: Buffer, s: Buffer, off: number, len: number): void {
  s.copy(buf, off, 0, Math.min(len, s.length));
}

function writeOctal(buf: Buffer, value: number, off: number, len: number): void {
  // len-1 digits then NUL, zero padded (what GNU tar and Go write).
  const s = value.toString(8).padStart(len - 1, '0');
  buf.write(s, off, len - 1, 'ascii');
  buf[off + len - 1] = 0;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  // The length prefix counts itself.
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

export function formatPaxMtime(ns: bigint): string {
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  const sec = abs / 1_000_000_000n;
  const frac = abs % 1_000_000_000n;
  let s = sec.toString();
  if (frac !== 0n) s += '.' + frac.toString().padStart(9, '0').replace(/0+$/, '');
  return neg ? '-' + s : s;
}

function ustarBlock(h: {
  name: Buffer;
  prefix?: Buffer;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: Buffer;
  devMajor: number;
  devMinor: number;
}, into?: Buffer): Buffer {
  const b = into === undefined ? Buffer.alloc(BLOCK) : into.fill(0, 0, BLOCK).subarray(0, BLOCK);
  writeString(b, h.name, 0, 100);
  writeOctal(b, h.mode & 0o7777, 100, 8);
  writeOctal(b, h.uid, 108, 8);
  writeOctal(b, h.gid, 116, 8);
  writeOctal(b, h.size, 124, 12);
  writeOctal(b, h.mtime, 136, 12);
  b.fill(0x20, 148, 156); // checksum placeholder: spaces
  b.write(h.typeflag, 156, 1, 'ascii');
  writeString(b, h.linkname, 157, 100);
  b.write('ustar\u000000', 257, 8, 'binary');
  // uname (265..297) and gname (297..329) stay empty for reproducibility.
  writeOctal(b, h.devMajor, 329, 8);
  writeOctal(b, h.devMinor, 337, 8);
  if (h.prefix) writeString(b, h.prefix, 345, 155);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 8, 'binary');
  return b;
}

/**
 * The header block(s) for one entry: an optional PAX extended header, then the ustar header. With
 * `scratch` (at least one block), an entry that needs no PAX header is encoded into it and the
 * returned view is only valid until the next call — the layer writer copies it out at once, which
 * spares one short-lived buffer per entry.
 */
export function encodeHeader(h: TarHeader, scratch?: Buffer): Buffer {
  const records: Array<[string, Buffer]> = [];
  const name = Buffer.from(h.name, 'utf8');
  const link = Buffer.from(h.linkname, 'utf8');
  if (name.length > 100) records.push(['path', name]);
  if (link.length > 100) records.push(['linkpath', link]);
  if (h.uid > MAX_OCTAL_7) records.push(['uid', Buffer.from(String(h.uid))]);
  if (h.gid > MAX_OCTAL_7) records.push(['gid', Buffer.from(String(h.gid))]);
  if (h.size > MAX_OCTAL_11) records.push(['size', Buffer.from(String(h.size))]);
  const sec = h.mtimeNs >= 0n ? h.mtimeNs / 1_000_000_000n : 0n;
  if (h.mtimeNs < 0n || h.mtimeNs % 1_000_000_000n !== 0n || sec > BigInt(MAX_OCTAL_11)) {
    records.push(['mtime', Buffer.from(formatPaxMtime(h.mtimeNs))]);
  }
  for (const k of Object.keys(h.xattrs).sort()) records.push([`SCHILY.xattr.${k}`, h.xattrs[k]!]);
  records.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

  const main = ustarBlock({
    name: name.length > 100 ? name.subarray(0, 100) : name,
    typeflag: h.typeflag,
    mode: h.mode,
    uid: Math.min(h.uid, MAX_OCTAL_7),
    gid: Math.min(h.gid, MAX_OCTAL_7),
    size: Math.min(h.size, MAX_OCTAL_11),
    mtime: Number(sec > BigInt(MAX_OCTAL_11) ? BigInt(MAX_OCTAL_11) : sec),
    linkname: link.length > 100 ? link.subarray(0, 100) : link,
    devMajor: h.devMajor,
    devMinor: h.devMinor,
  }, records.length === 0 ? scratch : undefined);
  if (records.length === 0) return main;
  const body = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
  const base = h.name.replace(/\/$/, '');
  const slash = base.lastIndexOf('/');
  const paxName = Buffer.from(
    (slash < 0 ? 'PaxHeaders.0/' + base : `${base.slice(0, slash)}/PaxHeaders.0/${base.slice(slash + 1)}`),
    'utf8',
  );
  const pax = ustarBlock({
    name: paxName.subarray(0, 100),
    typeflag: 'x',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: 0,
    linkname: Buffer.alloc(0),
    devMajor: 0,
    devMinor: 0,
  });
  return Buffer.concat([pax, body, Buffer.alloc(padding(body.length)), main]);
}

export function padding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

// ---------------------------------------------------------------------------------------------
// Decoding (for unpacking and tests)

function cstr(b: Buffer, off: number, len: number): Buffer {
  const end = b.indexOf(0, off);
  return b.subarray(off, end < 0 || end > off + len ? off + len : end);
}

function parseNumeric(b: Buffer, off: number, len: number): number {
  // GNU base-256 for large values.
  if ((b[off]! & 0x80) !== 0) {
    let v = 0;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
    return v;
  }
  const s = cstr(b, off, len).toString('ascii').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new StowageError('layer/bad-tar', `invalid numeric field ${JSON.stringify(s)} in tar header`);
  return parseInt(s, 8);
}

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

export interface RawHeader {
  name: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSec: number;
  linkname: string;
  devMajor: number;
  devMinor: number;
}

export function decodeUstar(b: Buffer): RawHeader {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  const stored = parseNumeric(b, 148, 8);
  if (stored !== sum) throw new StowageError('layer/bad-tar', 'tar header checksum mismatch', { hint: 'the layer is corrupt or not a tar archive' });
  let name = cstr(b, 0, 100).toString('utf8');
  const magic = b.subarray(257, 263).toString('binary');
  if (magic === 'ustar\u0000' || magic === 'ustar ') {
    const prefix = magic === 'ustar\u0000' ? cstr(b, 345, 155).toString('utf8') : '';
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  return {
    name,
    typeflag: b[156] === 0 ? '0' : String.fromCharCode(b[156]!),
    mode: parseNumeric(b, 100, 8),
    uid: parseNumeric(b, 108, 8),
    gid: parseNumeric(b, 116, 8),
    size: parseNumeric(b, 124, 12),
    mtimeSec: parseNumeric(b, 136, 12),
    linkname: cstr(b, 157, 100).toString('utf8'),
    devMajor: parseNumeric(b, 329, 8),
    devMinor: parseNumeric(b, 337, 8),
  };
}

/** Parses PAX records; values stay raw bytes (xattr values are binary). */
export function parsePax(body: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < body.length) {
    const sp = body.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(body.subarray(off, sp).toString('ascii'), 10);
    if (!Number.isFinite(len) || len <= 0 || off + len > body.length) {
      throw new StowageError('layer/bad-tar', 'malformed PAX record in tar');
    }
    const rec = body.subarray(sp + 1, off + len - 1); // drop trailing \n
    const eq = rec.indexOf(0x3d);
    if (eq > 0) out.set(rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1));
    off += len;
  }
  return out;
}

export function parsePaxMtime(s: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(s.trim());
  if (!m) throw new StowageError('layer/bad-tar', `invalid PAX mtime ${JSON.stringify(s)}`);
  const ns = BigInt(m[2]!) * 1_000_000_000n + BigInt((m[3] ?? '').slice(0, 9).padEnd(9, '0') || '0');
  return m[1] === '-' ? -ns : ns;
}
