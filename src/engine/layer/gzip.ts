/**
 * Parallel, deterministic gzip: the input is cut into fixed-size blocks, each compressed as an
 * independent gzip member on libuv's threadpool, and the members are emitted in input order. A
 * sequence of members is one valid gzip stream (RFC 1952 §2.2); gunzip, Go and skopeo read it whole.
 * Block boundaries depend only on byte offsets, so the output depends only on the input and level.
 */
import { gzip as gzipCb, constants as zc } from 'node:zlib';

export interface ParallelGzipOptions {
  /** Compression level (fixed, so output is reproducible). Default 6, as `gzip`/Go default. */
  level?: number;
  /** Uncompressed bytes per member. Default 1 MiB. */
  blockSize?: number;
  /** Members compressing at once (libuv threadpool has 4 threads by default). Default 4. */
  concurrency?: number;
  signal?: AbortSignal;
}

function gzipBlock(data: Buffer, level: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Node's gzip header has mtime 0 and no name; the OS byte is fixed per platform. An output
    // buffer larger than the worst case (incompressible input grows by ~5 bytes per 16 KiB) lets
    // deflate finish the block in one threadpool call instead of one per 16 KiB of output.
    const chunkSize = Math.max(64 * 1024, data.length + (data.length >> 8) + 1024);
    gzipCb(data, { level, strategy: zc.Z_DEFAULT_STRATEGY, chunkSize }, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

/** Transforms an uncompressed byte stream into a multi-member gzip stream. */
export async function* parallelGzip(
  input: AsyncIterable<Buffer>,
  options: ParallelGzipOptions = {},
): AsyncGenerator<Buffer> {
  const level = options.level ?? 6;
  const blockSize = options.blockSize ?? 1024 * 1024;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const pending: Array<Promise<Buffer>> = [];
  let parts: Buffer[] = [];
  let have = 0;
  const submit = (block: Buffer): void => {
    const p = gzipBlock(block, level);
    p.catch(() => {}); // awaited in order below; avoid an unhandled rejection meanwhile
    pending.push(p);
  };
  for await (const chunk of input) {
    options.signal?.throwIfAborted();
    let c = chunk;
    while (c.length > 0) {
      const take = Math.min(blockSize - have, c.length);
      parts.push(c.subarray(0, take));
      have += take;
      c = c.subarray(take);
      if (have === blockSize) {
        submit(Buffer.concat(parts, have));
        parts = [];
        have = 0;
        while (pending.length >= concurrency) yield await pending.shift()!;
      }
    }
  }
  if (have > 0 || pending.length === 0) submit(Buffer.concat(parts, have));
  while (pending.length > 0) {
    options.signal?.throwIfAborted();
    yield await pending.shift()!;
  }
}
