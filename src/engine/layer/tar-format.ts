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
  xattrs: Readonly<Record<string, Buffer>>;
}

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

/** `len - 1` octal digits, zero padded, then NUL (what GNU tar and Go write); no string per field. */
function writeOctal(buf: Buffer, value: number, off: number, len: number): void {
  let v = value;
  for (let i = off + len - 2; i >= off; i--) {
    buf[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  if (v !== 0) {
    // More digits than the field holds (callers clamp, so only odd device numbers): the leading ones, as before.
    buf.write(value.toString(8), off, len - 1, 'ascii');
  }
  buf[off + len - 1] = 0;
}

/** A field's text: written straight from the string when it fits whole, else its first `len` UTF-8 bytes. */
function writeText(buf: Buffer, s: string, bytes: Buffer | undefined, off: number, len: number): void {
  if (bytes === undefined) buf.write(s, off, len, 'utf8');
  else bytes.copy(buf, off, 0, Math.min(len, bytes.length));
}

const USTAR_MAGIC = Buffer.from('ustar\u000000', 'binary');

/** Bytes of the PAX record `"<len> <key>=<value>\n"`; the length prefix counts itself. */
function paxRecordLength(keyLen: number, valueLen: number): number {
  const bodyLen = keyLen + valueLen + 3; // ' ' key '=' value '\n'
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return len;
}

/** Writes one PAX record at `off` (see `paxRecordLength`) and returns the offset after it. */
function writePaxRecord(out: Buffer, off: number, len: number, key: string, value: Buffer | string): number {
  let o = off + out.write(String(len), off, 'latin1');
  out[o++] = 0x20;
  o += out.write(key, o, 'utf8');
  out[o++] = 0x3d;
  o += typeof value === 'string' ? out.write(value, o, 'utf8') : value.copy(out, o);
  out[o++] = 0x0a;
  return o;
}

export function formatPaxMtime(ns: bigint): string {
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  const sec = abs / 1_000_000_000n;
  const frac = Number(abs - sec * 1_000_000_000n);
  let s = sec.toString();
  if (frac !== 0) {
    // Nine digits, trailing zeros dropped.
    let digits = frac;
    let width = 9;
    while (digits % 10 === 0) {
      digits /= 10;
      width--;
    }
    s += '.' + String(digits).padStart(width, '0');
  }
  return neg ? '-' + s : s;
}

interface UstarFields {
  name: string;
  /** The name's UTF-8 bytes when longer than the field (its first 100 bytes go in). */
  nameBytes?: Buffer;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  linknameBytes?: Buffer;
  devMajor: number;
  devMinor: number;
}

/** One ustar header block written into `b` (at least BLOCK bytes, overwritten). */
function ustarBlock(h: UstarFields, b: Buffer): void {
  ustarFields(h, b);
  checksum(b);
}

/** The fields of a ustar header block, its checksum field left as spaces. */
function ustarFields(h: UstarFields, b: Buffer): void {
  b.fill(0, 0, BLOCK);
  writeText(b, h.name, h.nameBytes, 0, 100);
  writeOctal(b, h.mode & 0o7777, 100, 8);
  writeOctal(b, h.uid, 108, 8);
  writeOctal(b, h.gid, 116, 8);
  writeOctal(b, h.size, 124, 12);
  writeOctal(b, h.mtime, 136, 12);
  b.fill(0x20, 148, 156); // checksum placeholder: spaces
  b[156] = h.typeflag.charCodeAt(0);
  writeText(b, h.linkname, h.linknameBytes, 157, 100);
  USTAR_MAGIC.copy(b, 257);
  // uname (265..297) and gname (297..329) stay empty for reproducibility.
  writeOctal(b, h.devMajor, 329, 8);
  writeOctal(b, h.devMinor, 337, 8);
}

/** The header checksum of the block at `b` (its field holding spaces while summed). */
function checksum(b: Buffer): void {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  // Six octal digits, NUL, space.
  for (let i = 153; i >= 148; i--) {
    b[i] = 0x30 + (sum % 8);
    sum = Math.floor(sum / 8);
  }
  b[154] = 0;
  b[155] = 0x20;
}

const NS_PER_S = 1_000_000_000n;
const MAX_OCTAL_11_N = BigInt(MAX_OCTAL_11);

/**
 * The header block(s) for one entry: an optional PAX extended header, then the ustar header. With
 * `scratch` large enough, the blocks are encoded into it and the returned view is only valid until
 * the next call — the layer writer copies it out at once, which spares short-lived buffers per entry.
 */
export function encodeHeader(h: TarHeader, scratch?: Buffer): Buffer {
  const records: Array<[string, Buffer | string]> = [];
  const nameLen = Buffer.byteLength(h.name);
  const linkLen = h.linkname === '' ? 0 : Buffer.byteLength(h.linkname);
  const nameBytes = nameLen > 100 ? Buffer.from(h.name, 'utf8') : undefined;
  const linknameBytes = linkLen > 100 ? Buffer.from(h.linkname, 'utf8') : undefined;
  if (nameBytes) records.push(['path', nameBytes]);
  if (linknameBytes) records.push(['linkpath', linknameBytes]);
  if (h.uid > MAX_OCTAL_7) records.push(['uid', String(h.uid)]);
  if (h.gid > MAX_OCTAL_7) records.push(['gid', String(h.gid)]);
  if (h.size > MAX_OCTAL_11) records.push(['size', String(h.size)]);
  const sec = h.mtimeNs >= 0n ? h.mtimeNs / NS_PER_S : 0n;
  if (h.mtimeNs < 0n || h.mtimeNs % NS_PER_S !== 0n || sec > MAX_OCTAL_11_N) {
    records.push(['mtime', formatPaxMtime(h.mtimeNs)]);
  }
  const xattrNames = Object.keys(h.xattrs);
  if (xattrNames.length > 0) for (const k of xattrNames.sort()) records.push([`SCHILY.xattr.${k}`, h.xattrs[k]!]);
  if (records.length > 1) records.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

  const main: UstarFields = {
    name: h.name,
    typeflag: h.typeflag,
    mode: h.mode,
    uid: Math.min(h.uid, MAX_OCTAL_7),
    gid: Math.min(h.gid, MAX_OCTAL_7),
    size: Math.min(h.size, MAX_OCTAL_11),
    mtime: Number(sec > MAX_OCTAL_11_N ? MAX_OCTAL_11_N : sec),
    linkname: h.linkname,
    devMajor: h.devMajor,
    devMinor: h.devMinor,
  };
  if (nameBytes) main.nameBytes = nameBytes;
  if (linknameBytes) main.linknameBytes = linknameBytes;
  if (records.length === 0) {
    const out = scratch !== undefined && scratch.length >= BLOCK ? scratch.subarray(0, BLOCK) : Buffer.allocUnsafe(BLOCK);
    ustarBlock(main, out);
    return out;
  }
  const lens: number[] = [];
  let bodyLen = 0;
  for (const [k, v] of records) {
    const len = paxRecordLength(Buffer.byteLength(k), typeof v === 'string' ? Buffer.byteLength(v) : v.length);
    lens.push(len);
    bodyLen += len;
  }
  const bodyEnd = BLOCK + bodyLen;
  const total = bodyEnd + padding(bodyLen) + BLOCK;
  const out = scratch !== undefined && scratch.length >= total ? scratch.subarray(0, total) : Buffer.allocUnsafe(total);
  const pax: UstarFields = { name: '', typeflag: 'x', mode: 0o644, uid: 0, gid: 0, size: bodyLen, mtime: 0, linkname: '', devMajor: 0, devMinor: 0 };
  ustarFields(pax, out);
  writePaxName(out, h.name, nameLen);
  checksum(out);
  let off = BLOCK;
  for (let i = 0; i < records.length; i++) off = writePaxRecord(out, off, lens[i]!, records[i]![0], records[i]![1]);
  out.fill(0, bodyEnd, total - BLOCK);
  ustarBlock(main, out.subarray(total - BLOCK));
  return out;
}

/**
 * The PAX header's name, `<dir>/PaxHeaders.0/<base>`, into the name field of the zeroed block at
 * `out`: in place when it fits (`nameLen`: the name's UTF-8 length), else its first 100 UTF-8 bytes.
 */
function writePaxName(out: Buffer, name: string, nameLen: number): void {
  const end = name.endsWith('/') ? name.length - 1 : name.length;
  const slash = end === 0 ? -1 : name.lastIndexOf('/', end - 1);
  const ascii = nameLen === name.length;
  const dirLen = slash < 0 ? 0 : ascii ? slash + 1 : Buffer.byteLength(name.slice(0, slash + 1));
  const baseLen = (ascii ? end : nameLen - (name.length - end)) - dirLen;
  if (dirLen + PAX_DIR.length + baseLen <= 100) {
    const o = (slash < 0 ? 0 : out.write(name.slice(0, slash + 1), 0, 'utf8')) + PAX_DIR.copy(out, dirLen);
    out.write(end === name.length && slash < 0 ? name : name.slice(slash + 1, end), o, 'utf8');
    return;
  }
  const base = name.slice(0, end);
  const paxName = slash < 0 ? 'PaxHeaders.0/' + base : `${base.slice(0, slash)}/PaxHeaders.0/${base.slice(slash + 1)}`;
  Buffer.from(paxName, 'utf8').copy(out, 0, 0, 100);
}

const PAX_DIR = Buffer.from('PaxHeaders.0/', 'latin1');

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
