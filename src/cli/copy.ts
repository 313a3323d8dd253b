/**
 * `stowage copy SRC DST`: copy one image between a registry (`[docker://]registry/repo[:tag][@digest]`),
 * an OCI image layout (`oci:<dir>[:tag]`) and a docker-archive tar (`docker-archive:<file>[:ref]`).
 *
 * Argument parsing is pure (`parseCopyArgs`); the registry and store modules are imported only once
 * the arguments are valid, so `--help` and usage errors stay cheap.
 */
import { setMaxListeners } from 'node:events';
import { StowageError } from '../util/errors.js';
import { didYouMean } from '../util/levenshtein.js';
import type { Platform } from '../image/types.js';
import type { TlsTrust } from '../registry/tls-trust.js';
import { proxyConfigFromEnv } from '../registry/proxy.js';

export type CopyEndpoint =
  | { kind: 'registry'; text: string }
  | { kind: 'oci'; text: string }
  | { kind: 'docker-archive'; text: string };

export interface CopyOptions {
  src: CopyEndpoint;
  dst: CopyEndpoint;
  insecureRegistries: string[];
  registryMirrors: string[];
  cacheDir?: string;
  platform?: string;
  quiet: boolean;
  help: boolean;
}

export const COPY_USAGE = `Usage: stowage copy [options] SRC DST

Copies one image. SRC and DST are each one of:
  [docker://]registry/repository[:tag][@sha256:…]   an image in a registry (docker.io defaults apply)
  oci:<dir>[:tag]                                  an OCI image layout directory
  docker-archive:<file>[:name:tag]                 a 'docker save' tar archive

Options:
  --insecure-registry host:port   talk plain HTTP to this registry (repeatable; localhost/127.0.0.1 always do)
  --registry-mirror url           pull docker.io images through this mirror first (repeatable)
  --cache-dir dir                 where pulled blobs are kept (default: STOWAGE_CACHE_DIR or ~/.cache/stowage)
  --platform os/arch[/variant]    which image of a multi-platform index to copy (default: this host's)
  -q, --quiet                     print only the digest
  -h, --help                      show this help

Credentials come from docker's config ($DOCKER_CONFIG or ~/.docker/config.json, including
credHelpers and credsStore).
`;

const FLAGS = ['--insecure-registry', '--registry-mirror', '--cache-dir', '--platform', '--quiet', '--help'];

function usage(message: string, hint?: string): StowageError {
  return new StowageError('usage/copy', message, { hint: hint ?? "run 'stowage copy --help' for the syntax" });
}

export function parseEndpoint(text: string): CopyEndpoint {
  if (text.startsWith('oci:')) return { kind: 'oci', text };
  if (text.startsWith('docker-archive:')) return { kind: 'docker-archive', text };
  if (text.startsWith('docker://')) return { kind: 'registry', text: text.slice('docker://'.length) };
  const scheme = /^(oci-archive|dir|containers-storage|docker-daemon):/.exec(text);
  if (scheme) {
    throw usage(`transport ${JSON.stringify(scheme[1])} is not supported by stowage copy`, 'use a registry reference, oci:<dir>[:tag] or docker-archive:<file>[:ref]');
  }
  return { kind: 'registry', text };
}

/** Pure: argv → options. */
export function parseCopyArgs(argv: readonly string[]): CopyOptions {
  const positional: string[] = [];
  const o: Omit<CopyOptions, 'src' | 'dst'> = { insecureRegistries: [], registryMirrors: [], quiet: false, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    const takeValue = (): string => {
      if (eq >= 0) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw usage(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '-h':
      case '--help':
        o.help = true;
        break;
      case '-q':
      case '--quiet':
        o.quiet = true;
        break;
      case '--insecure-registry':
        o.insecureRegistries.push(takeValue());
        break;
      case '--registry-mirror':
        o.registryMirrors.push(takeValue());
        break;
      case '--cache-dir':
        o.cacheDir = takeValue();
        break;
      case '--platform':
        o.platform = takeValue();
        break;
      default: {
        const guess = didYouMean(name, FLAGS);
        throw usage(`unknown option ${JSON.stringify(name)}`, guess ? `did you mean ${guess}?` : undefined);
      }
    }
  }
  if (o.help) return { ...o, src: { kind: 'registry', text: '' }, dst: { kind: 'registry', text: '' } };
  if (positional.length !== 2) throw usage(`copy needs exactly two arguments, SRC and DST (got ${positional.length})`);
  return { ...o, src: parseEndpoint(positional[0]!), dst: parseEndpoint(positional[1]!) };
}

function describe(e: CopyEndpoint): string {
  return e.kind === 'registry' ? `docker://${e.text}` : e.text;
}

export interface CopyIo {
  stdout: { write(s: string): unknown };
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** CAs for TLS connections (default: Node's). */
  tls?: TlsTrust;
}

export async function runCopy(argv: string[], io: CopyIo = { stdout: process.stdout, env: process.env }): Promise<number> {
  const options = parseCopyArgs(argv);
  if (options.help) {
    io.stdout.write(COPY_USAGE);
    return 0;
  }
  const [{ RegistryClient }, { dockerConfigCredentials }, { parseReference, formatReference }, { pullImage }, { Pusher }, { FsBlobStore }, { resolveCacheDir }, oci, archive, platformMod] =
    await Promise.all([
      import('../registry/client.js'),
      import('../registry/auth.js'),
      import('../registry/reference.js'),
      import('../registry/pull.js'),
      import('../registry/push.js'),
      import('../store/blob-store.js'),
      import('../store/cache-dir.js'),
      import('../store/oci-layout.js'),
      import('../store/docker-archive.js'),
      import('../image/platform.js'),
    ]);
  const platform: Platform = options.platform ? platformMod.parsePlatform(options.platform) : platformMod.hostPlatform();

  // Validate both ends before any network or disk work.
  const srcRef = options.src.kind === 'registry' ? parseReference(options.src.text) : undefined;
  const dstRef = options.dst.kind === 'registry' ? parseReference(options.dst.text) : undefined;
  const srcOci = options.src.kind === 'oci' ? oci.parseOciReference(options.src.text) : undefined;
  const dstOci = options.dst.kind === 'oci' ? oci.parseOciReference(options.dst.text) : undefined;
  const srcArchive = options.src.kind === 'docker-archive' ? archive.parseDockerArchiveReference(options.src.text) : undefined;
  const dstArchive = options.dst.kind === 'docker-archive' ? archive.parseDockerArchiveReference(options.dst.text) : undefined;
  const proxy = proxyConfigFromEnv(io.env);

  const controller = new AbortController();
  const onSigint = () => controller.abort(new StowageError('copy/interrupted', 'copy interrupted (SIGINT); nothing was tagged at the destination unless the copy had finished', { hint: 'run the same command again; blobs already copied are reused' }));
  const outer = io.signal;
  outer?.addEventListener('abort', () => controller.abort(outer.reason), { once: true });
  process.once('SIGINT', onSigint);
  const signal = controller.signal;
  // Every concurrent request listens on this one signal (undici adds a listener per request until its
  // body is consumed): dozens at once is by design, not a leak.
  setMaxListeners(256, signal);
  const client = new RegistryClient({
    credentials: dockerConfigCredentials({ env: io.env }),
    insecureRegistries: options.insecureRegistries,
    registryMirrors: options.registryMirrors,
    ...(io.tls ? { tls: io.tls } : {}),
    ...(proxy ? { proxy } : {}),
  });
  try {
    let image;
    if (srcRef && dstOci) {
      // Registry → layout: each blob is streamed once, verified, straight into the layout (the
      // cache copy would never be read again); one file-system sync before the index names them.
      // A layout this copy creates and then fails to fill is removed again, so a failed pull leaves
      // no empty layout that looks like an output — unless another copy made it its output
      // meanwhile (an existing layout keeps its images; verified blobs a failed copy added to it
      // are only unreferenced).
      const { existsSync } = await import('node:fs');
      const createdLayout = !existsSync(dstOci.dir);
      try {
        const store = await oci.openLayoutBlobStore(dstOci.dir, { signal });
        image = (await pullImage(srcRef, { client, store, platform, signal, cacheManifests: false })).image;
        await store.syncAll(signal);
        // Written here, not below, so a failed index write (no space, SIGINT) also removes the layout.
        await oci.writeImageToLayout(dstOci.dir, image, { tags: dstOci.tag !== undefined ? [dstOci.tag] : [], signal });
      } catch (e) {
        if (createdLayout) await oci.removeUnpublishedLayout(dstOci.dir);
        throw e;
      }
    } else if (srcRef) {
      const store = await FsBlobStore.open(resolveCacheDir({ flag: options.cacheDir, env: io.env }));
      image = (await pullImage(srcRef, { client, store, platform, signal })).image;
    } else if (srcOci) {
      image = await oci.readImageFromLayout(srcOci.dir, { ...(srcOci.tag !== undefined ? { tag: srcOci.tag } : {}), platform, signal });
    } else {
      image = await archive.readDockerArchive(srcArchive!.file, { ...(srcArchive!.ref !== undefined ? { ref: srcArchive!.ref } : {}), signal });
    }

    let summary = '';
    if (dstRef) {
      if (dstRef.digest !== undefined && dstRef.digest !== image.digest) {
        throw new StowageError('usage/copy-digest-mismatch', `cannot copy to ${formatReference(dstRef)}: the image's digest is ${image.digest}`, {
          hint: 'name the destination by tag, or by the digest the image really has',
        });
      }
      const pusher = new Pusher({ client });
      await pusher.push({ registry: dstRef.registry, repository: dstRef.repository, tags: dstRef.tag !== undefined ? [dstRef.tag] : [], root: image }, signal);
      const s = pusher.stats()[dstRef.registry];
      if (s) {
        summary = `blobs: ${s.blobsUploaded} uploaded, ${s.blobsMounted} mounted, ${s.blobsPresent} already present; ${s.bytesUploaded} bytes uploaded; ${s.requests} requests\n`;
      }
    } else if (dstOci) {
      // registry → oci wrote the layout above, where a failure removes what it created.
      if (!srcRef) await oci.writeImageToLayout(dstOci.dir, image, { tags: dstOci.tag !== undefined ? [dstOci.tag] : [], signal });
    } else {
      await archive.writeDockerArchive(dstArchive!.file, image, { refs: dstArchive!.ref !== undefined ? [dstArchive!.ref] : [], signal });
    }
    if (options.quiet) io.stdout.write(`${image.digest}\n`);
    else io.stdout.write(`copied ${describe(options.src)} → ${describe(options.dst)}\ndigest: ${image.digest}\n${summary}`);
    return 0;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await client.close();
  }
}
