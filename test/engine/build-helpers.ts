/**
 * Shared setup for the build tests: a temp context written from a file map, real engine ports
 * (blob store, unpacked layers, snapshotter, bwrap sandbox) and the busybox base image as `busybox`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Image } from '../../src/image/blob.js';
import { hostPlatform } from '../../src/image/platform.js';
import { buildDockerfile, createEnginePorts, writeDestinations, type BuildOptions } from '../../src/engine/build-image.js';
import { busyboxLayout, localImages, processTempDir } from '../helpers/busybox-image.js';

let cacheDir: string | undefined;
/** One cache per test process: base layers are unpacked once, like on a real machine. */
function sharedCacheDir(): string {
  cacheDir ??= processTempDir('stowage-build-cache-');
  return cacheDir;
}

export interface BuildFixture {
  root: string;
  context: string;
  cacheDir: string;
  cleanup(): void;
}

export function fixture(files: Record<string, string>): BuildFixture {
  const root = mkdtempSync(join(tmpdir(), 'stowage-build-'));
  const context = join(root, 'context');
  mkdirSync(context);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(context, name)), { recursive: true });
    writeFileSync(join(context, name), content);
  }
  return { root, context, cacheDir: sharedCacheDir(), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export interface BuildRun {
  image: Image;
}

export async function build(
  fx: BuildFixture,
  options: { target?: string; buildArgs?: Record<string, string>; labels?: Record<string, string>; snapshotter?: 'auto' | 'overlay' | 'walk'; dockerfile?: string; signal?: AbortSignal } & Partial<
    Pick<BuildOptions, 'sourceDateEpoch' | 'now' | 'onEvent' | 'secrets' | 'singleSnapshot'>
  > = {},
): Promise<Image> {
  const signal = options.signal ?? new AbortController().signal;
  const setup = await createEnginePorts({
    cacheDir: fx.cacheDir,
    snapshotter: options.snapshotter ?? 'auto',
    isolation: 'bwrap',
    // Built lazily: only tests whose Dockerfile names `busybox` pay for it (once per process).
    images: {
      async resolve(ref, platform, sig) {
        const bb = await busyboxLayout();
        return localImages({ busybox: { dir: bb.dir, tag: bb.tag } }).resolve(ref, platform, sig);
      },
    },
    signal,
  });
  try {
    return await buildDockerfile({
      dockerfilePath: join(fx.context, options.dockerfile ?? 'Dockerfile'),
      contextDir: fx.context,
      ...(options.target ? { target: options.target } : {}),
      buildArgs: options.buildArgs ?? {},
      ...(options.labels ? { labels: options.labels } : {}),
      platform: hostPlatform(),
      ports: setup.engine,
      options: {
        cacheDir: fx.cacheDir,
        signal,
        ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
        now: options.now ?? (() => new Date('2026-01-02T03:04:05Z')),
        ...(options.onEvent ? { onEvent: options.onEvent } : {}),
        ...(options.secrets ? { secrets: options.secrets } : {}),
        ...(options.singleSnapshot ? { singleSnapshot: true } : {}),
      },
    });
  } finally {
    await setup.close();
  }
}

/** Writes the image to an OCI layout and unpacks it with umoci (an independent reader): the rootfs path. */
export async function unpackWithUmoci(fx: BuildFixture, image: Image, name = 'img'): Promise<string> {
  const layout = join(fx.root, `${name}-layout`);
  await writeDestinations(image, [`oci:${layout}:t`], { signal: new AbortController().signal });
  const bundle = join(fx.root, `${name}-bundle`);
  execFileSync('umoci', ['unpack', '--image', `${layout}:t`, bundle], { stdio: 'pipe' });
  return join(bundle, 'rootfs');
}

/** Paths in one layer of `image` (its blob written to an OCI layout, listed by GNU tar). */
export async function layerPaths(fx: BuildFixture, image: Image, index: number): Promise<string[]> {
  const layout = join(fx.root, `layers-${image.digest.slice(7, 19)}`);
  await writeDestinations(image, [`oci:${layout}:t`], { signal: new AbortController().signal });
  const blob = join(layout, 'blobs', 'sha256', image.layers.at(index)!.descriptor.digest.slice('sha256:'.length));
  return execFileSync('tar', ['-tzf', blob], { encoding: 'utf8' }).split('\n').filter(Boolean).map((p) => p.replace(/\/$/, ''));
}

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}
