/**
 * ADD on top of COPY (DOCKERFILE.md A10 "ADD extras"): local tar archives, detected by content,
 * are extracted (merging like `tar -x`, safely inside the rootfs); http(s) URLs are downloaded
 * with undici into a private temp dir (mode 0600, mtime from Last-Modified, `--checksum`
 * verified) before anything is written to the rootfs.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dispatcher } from 'undici';
import type { TlsTrust } from '../../registry/tls-trust.js';
import { proxyFor, type ProxyConfig } from '../../registry/proxy.js';
import { StowageError } from '../../util/errors.js';
import { resolveSourcesIn } from '../context/resolve.js';
import { copyIntoRootfs, resolveDest, type CopyOptions, type CopyResult, type CopySource } from './copy.js';
import { parseChmod } from './chmod.js';
import { canonicalRoot, mkdirAllInRoot } from './in-root.js';
import { detectArchive, extractTarFile } from './untar.js';

export interface UrlSource {
  readonly kind: 'url';
  readonly url: string;
}

export type AddSource = CopySource | UrlSource;

export interface AddOptions extends Omit<CopyOptions, 'sources'> {
  /** Resolved sources, or raw arguments (URLs recognised by their `http(s)://` scheme). */
  sources: readonly AddSource[] | readonly string[];
  /** `--unpack`: undefined = local archives yes, downloads no; false = never; true = also downloads. */
  unpack?: boolean;
  /** `--checksum=sha256:<hex>` for a single URL source. */
  checksum?: string;
  /** undici dispatcher for downloads (proxies, tests); default: undici's global one. */
  dispatcher?: Dispatcher;
  /** CAs trusted for https downloads when no `dispatcher` is given (default: Node's). */
  tls?: TlsTrust;
  /** HTTPS_PROXY & co. when no `dispatcher` is given (default: direct). */
  proxy?: ProxyConfig;
  /** Parent of the private download dir (default: the OS temp dir). */
  tmpDir?: string;
}

export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** A URL fit for messages: no user info, no query (either may hold credentials). */
export function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    url.username = '';
    url.password = '';
    const q = url.search ? '?…' : '';
    url.search = '';
    return url.toString() + q;
  } catch {
    return '<invalid URL>';
  }
}

/** BuildKit's file name for a download: `path.Base(url.Path)`, or `__unnamed__`. */
export function urlFileName(u: string): string {
  let p: string;
  try {
    p = decodeURIComponent(new URL(u).pathname);
  } catch {
    return '__unnamed__';
  }
  const base = path.posix.basename(path.posix.normalize(p));
  return base === '' || base === '.' || base === '/' || base === '..' ? '__unnamed__' : base;
}

/** Parses `sha256:<64 hex>` (the only algorithm ADD supports). */
export function parseChecksum(value: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(value.trim().toLowerCase());
  if (!m) {
    throw new StowageError('copy/invalid-checksum', `invalid checksum "${value}": expected sha256:<64 hex digits>`, {
      hint: 'compute it with `sha256sum <file>` and write --checksum=sha256:<digest>',
    });
  }
  return m[1]!;
}

export async function addIntoRootfs(opts: AddOptions): Promise<CopyResult> {
  const raw = opts.sources;
  const mixed: (AddSource | string)[] = isStringList(raw)
    ? raw.map((s): AddSource | string => (isUrl(s) ? { kind: 'url', url: s } : s))
    : [...raw];
  // Validate before any download or write.
  if (opts.chmod !== undefined) parseChmod(opts.chmod);
  const expected = opts.checksum !== undefined ? parseChecksum(opts.checksum) : undefined;
  if (expected !== undefined) {
    if (mixed.length !== 1) {
      throw new StowageError('copy/checksum-multiple-sources', "checksum can't be specified for multiple sources");
    }
    const only = mixed[0]!;
    if (typeof only === 'string' || only.kind !== 'url') {
      throw new StowageError('copy/checksum-not-url', "checksum can't be specified for non-HTTP(S) sources", {
        hint: '--checksum verifies downloads; drop it for local files',
      });
    }
  }
  for (const s of mixed) {
    if (typeof s !== 'string' && s.kind === 'url' && new URL(s.url).pathname.endsWith('.git')) {
      throw new StowageError('copy/git-unsupported', `git sources are not supported yet: ${redactUrl(s.url)}`, {
        hint: 'clone the repository in a RUN step or into the build context',
      });
    }
  }

  const root = await canonicalRoot(opts.rootfs);
  const sourceRoot = await canonicalRoot(opts.sourceRoot);
  const paths: string[] = [];
  const base: Omit<CopyOptions, 'sources'> = { ...opts };
  let batch: CopySource[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const r = await copyIntoRootfs({ ...base, sources: batch });
    paths.push(...r.paths);
    batch = [];
  };

  for (const s of mixed) {
    opts.signal.throwIfAborted();
    if (typeof s !== 'string' && s.kind === 'url') {
      await flush();
      paths.push(await addUrl(opts, root, s.url, expected));
      continue;
    }
    const resolved: CopySource[] =
      typeof s === 'string'
        ? await resolveSourcesIn(sourceRoot, [s], {
            allowEmptyWildcard: true,
            parents: opts.parents,
            excludes: opts.excludes,
            ...(opts.fromContext && opts.ignore ? { ignore: opts.ignore } : {}),
            mode: opts.fromContext ? 'contained' : 'chroot',
            signal: opts.signal,
          })
        : [s];
    for (const r of resolved) {
      if (r.kind === 'path' && !r.isDir && opts.unpack !== false && r.parentsPath === undefined) {
        const compression = await detectArchive(r.hostPath, opts.signal);
        if (compression !== undefined) {
          await flush();
          paths.push(await extractInto(opts, root, r.hostPath));
          continue;
        }
      }
      batch.push(r);
    }
  }
  await flush();
  return { paths };
}

function isStringList(s: readonly AddSource[] | readonly string[]): s is readonly string[] {
  return s.length > 0 && typeof s[0] === 'string';
}

/** Extracts an archive into the destination, which is always a directory for archives. */
async function extractInto(opts: AddOptions, root: string, archive: string): Promise<string> {
  const dest = resolveDest(opts.dest, opts.workdir);
  const dir = await mkdirAllInRoot(root, dest.path, {
    mode: 0o755,
    uid: opts.chown?.uid ?? 0,
    gid: opts.chown?.gid ?? 0,
    mkdir: fs.mkdir,
    chown: fs.chown,
    chmod: fs.chmod,
  });
  await extractTarFile({
    archivePath: archive,
    root,
    destRel: dir.rel,
    keepOwners: true,
    ...(opts.chown ? { chown: opts.chown } : {}),
    signal: opts.signal,
  });
  return '/' + dir.rel;
}

async function addUrl(opts: AddOptions, root: string, url: string, expected: string | undefined): Promise<string> {
  const base = opts.tmpDir ?? os.tmpdir();
  await fs.mkdir(base, { recursive: true, mode: 0o700 });
  const tmp = await fs.mkdtemp(path.join(base, 'stowage-add-'));
  try {
    const name = urlFileName(url);
    const file = path.join(tmp, name);
    await download(url, file, expected, opts);
    if (opts.unpack === true && (await detectArchive(file, opts.signal)) !== undefined) {
      return await extractInto(opts, root, file);
    }
    const r = await copyIntoRootfs({
      ...opts,
      rootfs: root,
      sourceRoot: tmp,
      sources: [{ kind: 'path', relPath: name, hostPath: file, resolvedRel: name, isDir: false }],
      fromContext: true,
      excludes: [],
      parents: false,
    });
    return r.paths[0]!;
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

async function download(url: string, file: string, expected: string | undefined, opts: AddOptions): Promise<void> {
  const shown = redactUrl(url);
  // fetch refuses user info in URLs: send it as Basic auth, and keep it out of every message.
  const target = new URL(url);
  const headers: Record<string, string> = {};
  const secrets = [target.username, target.password, target.search].filter((x) => x.length > 1);
  if (target.username !== '' || target.password !== '') {
    const pair = `${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`;
    headers['authorization'] = 'Basic ' + Buffer.from(pair).toString('base64');
    target.username = '';
    target.password = '';
  }
  const scrub = (m: string) => secrets.reduce((acc, sec) => acc.split(sec).join('…'), m);
  // Imported here, not at the top: undici's full entry point (fetch, websockets, mocks: ~110
  // modules) costs every build ~0.1–0.3 s of startup, and only ADD <url> needs it.
  const { fetch, Agent, ProxyAgent } = await import('undici');
  // Extra CAs (the launcher's deferred NODE_EXTRA_CA_CERTS): an agent of this download's own,
  // closed with it. The expensive part, the secure context, is built once per run and shared; an
  // agent per download only gives up connection reuse between ADD URLs, which are few, and needs no
  // owner that outlives the build to close it. Asked for plain http:// URLs too: they may redirect
  // to https. Through a proxy when HTTPS_PROXY/HTTP_PROXY name one for this URL (redirects follow
  // through the same proxy).
  const secureContext = opts.dispatcher ? undefined : opts.tls?.secureContext();
  const proxy = opts.dispatcher ? undefined : proxyFor(opts.proxy, target);
  const agent = proxy
    ? new ProxyAgent({ uri: proxy.href, ...(secureContext ? { requestTls: { secureContext }, proxyTls: { secureContext } } : {}) })
    : secureContext
      ? new Agent({ connect: { secureContext } })
      : undefined;
  try {
    await fetchInto(file, expected, opts, { fetch, dispatcher: opts.dispatcher ?? agent, target, headers, shown, scrub });
  } finally {
    await agent?.close().catch(() => undefined);
  }
}

/** The download itself, through `r.dispatcher` (undici's global one when undefined). */
async function fetchInto(
  file: string,
  expected: string | undefined,
  opts: AddOptions,
  r: { fetch: typeof import('undici').fetch; dispatcher: Dispatcher | undefined; target: URL; headers: Record<string, string>; shown: string; scrub: (m: string) => string },
): Promise<void> {
  const { shown, scrub } = r;
  let res;
  try {
    res = await r.fetch(r.target, {
      signal: opts.signal,
      redirect: 'follow',
      headers: r.headers,
      ...(r.dispatcher ? { dispatcher: r.dispatcher } : {}),
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    // The cause may quote the URL; it is not attached, its scrubbed message is.
    throw new StowageError('copy/download-failed', `cannot download ${shown}: ${scrub(describeFetchError(e))}`);
  }
  if (!res.ok || res.body === null) {
    await res.body?.cancel();
    throw new StowageError('copy/download-failed', `cannot download ${shown}: HTTP ${res.status} ${res.statusText}`, {
      hint: 'check the URL is reachable from the build machine',
    });
  }
  const partial = file + '.partial';
  const hash = createHash('sha256');
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>),
      hasher,
      createWriteStream(partial, { flags: 'wx', mode: 0o600 }),
      { signal: opts.signal },
    );
    const actual = hash.digest('hex');
    if (expected !== undefined && actual !== expected) {
      throw new StowageError(
        'copy/checksum-mismatch',
        `checksum mismatch for ${shown}: expected sha256:${expected}, got sha256:${actual}`,
        { hint: 'the file changed upstream or the checksum is wrong; nothing was added' },
      );
    }
    await fs.chmod(partial, 0o600);
    const lm = res.headers.get('last-modified');
    const t = lm !== null ? Date.parse(lm) : NaN;
    if (!Number.isNaN(t)) await fs.utimes(partial, new Date(t), new Date(t));
    await fs.rename(partial, file);
  } catch (e) {
    await fs.rm(partial, { force: true });
    if (e instanceof StowageError || (e as Error).name === 'AbortError') throw e;
    throw new StowageError('copy/download-failed', `cannot download ${shown}: ${scrub(describeFetchError(e))}`);
  }
}

/** fetch wraps network errors as "fetch failed" with the useful part in `cause`. */
function describeFetchError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : undefined;
  return cause !== undefined ? `${msg} (${cause})` : msg;
}
