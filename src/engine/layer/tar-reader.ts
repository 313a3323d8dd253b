/**
 * Streaming tar reader: ustar, PAX (path, linkpath, size, uid, gid, mtime, SCHILY.xattr.*) and GNU
 * long names. Each entry's content must be consumed (or skipped) before asking for the next.
 */
import { StowageError } from '../../util/errors.js';
import { BLOCK, decodeUstar, isZeroBlock, padding, parsePax, parsePaxMtime, type TarHeader } from './tar-format.js';

/** Pulls exact byte counts out of an async stream of chunks. */
export class ByteReader {
  private readonly it: AsyncIterator<Buffer>;
  private buf: Buffer = Buffer.alloc(0);
  private done = false;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>) {
    const inner: AsyncIterator<Buffer | Uint8Array | string> | Iterator<Buffer | Uint8Array | string> =
      Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : source[Symbol.iterator]();
    this.it = {
      next: async () => {
        const r = await inner.next();
        if (r.done) return r;
        const v = r.value;
        return { done: false, value: typeof v === 'string' ? Buffer.from(v) : Buffer.isBuffer(v) ? v : Buffer.from(v) };
      },
    };
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    return true;
  }

  /** Exactly n bytes, or fewer only at end of stream. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) if (!(await this.fill())) break;
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** Streams n bytes to `sink` chunk by chunk (no whole-file buffering). */
  async forEachChunk(n: number, sink: (chunk: Buffer) => void): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) {
        throw new StowageError('layer/bad-tar', 'tar archive ends in the middle of a file', { hint: 'the layer blob is truncated' });
      }
      const take = Math.min(left, this.buf.length);
      sink(this.buf.subarray(0, take));
      this.buf = this.buf.subarray(take);
      left -= take;
    }
  }

  async skip(n: number): Promise<void> {
    await this.forEachChunk(n, () => {});
  }

  /** Consumes the rest of the stream (so a hashing/verifying upstream sees every byte). */
  async drain(): Promise<void> {
    this.buf = Buffer.alloc(0);
    while (await this.fill()) this.buf = Buffer.alloc(0);
  }
}

export interface TarEntry {
  header: TarHeader;
  /** Streams the entry's content; call at most once, before the next entry. */
  content(sink: (chunk: Buffer) => void): Promise<void>;
}

/** Yields entries in archive order. Content not consumed by the caller is skipped. */
export async function* readTar(
  source: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>,
  signal?: AbortSignal): AsyncGenerator<TarEntry> {
  const r = new ByteReader(source);
  let pax = new Map<string, Buffer>();
  const global = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    signal?.throwIfAborted();
    const block = await r.read(BLOCK);
    if (block.length === 0) break; // tolerate a missing end-of-archive marker
    if (block.length < BLOCK) throw new StowageError('layer/bad-tar', 'tar archive is truncated');
    if (isZeroBlock(block)) {
      await r.drain();
      break;
    }
    const raw = decodeUstar(block);
    const paddedSize = raw.size + padding(raw.size);
    if (raw.typeflag === 'x' || raw.typeflag === 'g' || raw.typeflag === 'L' || raw.typeflag === 'K') {
      if (raw.size > 16 * 1024 * 1024) throw new StowageError('layer/bad-tar', 'oversized tar extended header');
      const body = await r.read(paddedSize);
      const data = body.subarray(0, raw.size);
      if (raw.typeflag === 'x') pax = parsePax(data);
      else if (raw.typeflag === 'g') for (const [k, v] of parsePax(data)) global.set(k, v);
      else if (raw.typeflag === 'L') longName = cstring(data);
      else longLink = cstring(data);
      continue;
    }
    const rec = new Map([...global, ...pax]);
    const str = (k: string): string | undefined => rec.get(k)?.toString('utf8');
    const xattrs: Record<string, Buffer> = {};
    for (const [k, v] of rec) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice('SCHILY.xattr.'.length)] = Buffer.from(v);
    const size = str('size') !== undefined ? Number(str('size')) : raw.size;
    const header: TarHeader = {
      name: str('path') ?? longName ?? raw.name,
      typeflag: raw.typeflag,
      mode: raw.mode,
      uid: str('uid') !== undefined ? Number(str('uid')) : raw.uid,
      gid: str('gid') !== undefined ? Number(str('gid')) : raw.gid,
      size,
      mtimeNs: str('mtime') !== undefined ? parsePaxMtime(str('mtime')!) : BigInt(raw.mtimeSec) * 1_000_000_000n,
      linkname: str('linkpath') ?? longLink ?? raw.linkname,
      devMajor: raw.devMajor,
      devMinor: raw.devMinor,
      xattrs,
    };
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    // Header-only types carry no content whatever their size field says (as Go's archive/tar reads them).
    const dataSize = '123456'.includes(header.typeflag) ? 0 : size;
    let consumed = false;
    yield {
      header,
      content: async (sink) => {
        if (consumed) throw new Error('tar entry content consumed twice');
        consumed = true;
        await r.forEachChunk(dataSize, sink);
      },
    };
    if (!consumed) await r.skip(dataSize);
    await r.skip(padding(dataSize));
  }
}

function cstring(b: Buffer): string {
  const i = b.indexOf(0);
  return (i < 0 ? b : b.subarray(0, i)).toString('utf8');
}
