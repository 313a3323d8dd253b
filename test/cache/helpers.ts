/**
 * Real engine builds with a step cache: a temp context, its own cache dir (so the step index starts
 * empty), the busybox base image as `busybox`, and the events of each build.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Image } from '../../src/image/blob.js';
import { hostPlatform } from '../../src/image/platform.js';
import { buildDockerfile, createEnginePorts } from '../../src/engine/build-image.js';
import type { BuildEvent } from '../../src/engine/instructions/types.js';
import type { StepCache } from '../../src/cache/step-cache.js';
import { busyboxLayout, localImages } from '../helpers/busybox-image.js';

export interface CacheFixture {
  root: string;
  context: string;
  cacheDir: string;
  write(files: Record<string, string>): void;
  cleanup(): void;
}

export function cacheFixture(files: Record<string, string>): CacheFixture {
  const root = mkdtempSync(join(tmpdir(), 'stowage-cache-test-'));
  const context = join(root, 'context');
  mkdirSync(context);
  const write = (fs: Record<string, string>) => {
    for (const [name, content] of Object.entries(fs)) {
      mkdirSync(dirname(join(context, name)), { recursive: true });
      writeFileSync(join(context, name), content);
    }
  };
  write(files);
  return { root, context, cacheDir: join(root, 'cache'), write, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export interface CachedBuild {
  image: Image;
  events: BuildEvent[];
  warnings: string[];
  /** Lines of the steps that ran (not restored from the cache), in event order. */
  ran: number[];
  /** Lines of the steps restored from the cache. */
  hits: number[];
  pushStats: Record<string, unknown>;
}

export async function cachedBuild(
  fx: CacheFixture,
  options: {
    buildArgs?: Record<string, string>;
    cacheDir?: string;
    repo?: string;
    ttlMs?: number;
    noCache?: boolean;
    insecureRegistries?: string[];
    stageConcurrency?: number;
    /** Called with the step cache to run more builds on it (single flight within one run). */
  } = {},
): Promise<CachedBuild> {
  const signal = new AbortController().signal;
  const cacheDir = options.cacheDir ?? fx.cacheDir;
  const setup = await createEnginePorts({
    cacheDir,
    snapshotter: 'auto',
    isolation: 'bwrap',
    registry: { insecureRegistries: options.insecureRegistries ?? [] },
    images: {
      async resolve(ref, platform, sig) {
        const bb = await busyboxLayout();
        return localImages({ busybox: { dir: bb.dir, tag: bb.tag } }).resolve(ref, platform, sig);
      },
    },
    signal,
  });
  const events: BuildEvent[] = [];
  const warnings: string[] = [];
  let stepCache: StepCache | undefined;
  try {
    if (!options.noCache) {
      stepCache = setup.createStepCache({
        ...(options.repo ? { repo: options.repo } : {}),
        ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}),
        warn: (m) => warnings.push(m),
      });
    }
    const image = await buildDockerfile({
      dockerfilePath: join(fx.context, 'Dockerfile'),
      contextDir: fx.context,
      buildArgs: options.buildArgs ?? {},
      platform: hostPlatform(),
      ports: setup.engine,
      options: {
        cacheDir,
        signal,
        ...(stepCache ? { stepCache } : {}),
        ...(options.stageConcurrency !== undefined ? { stageConcurrency: options.stageConcurrency } : {}),
        onEvent: (e) => events.push(e),
      },
    });
    await stepCache?.flush();
    return { image, events, warnings, ...stepLines(events), pushStats: setup.pushStats() };
  } finally {
    await setup.close();
  }
}

export function stepLines(events: readonly BuildEvent[]): { ran: number[]; hits: number[] } {
  const hits: number[] = [];
  const ran: number[] = [];
  for (const e of events) {
    if (e.type === 'step-done') (e.cached ? hits : ran).push(e.line);
  }
  return { ran, hits };
}
