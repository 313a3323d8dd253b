/**
 * Workload 1: 20 images sharing one small busybox base, each adding a 4 KB COPY and a small RUN,
 * pushed to 5 repositories of the local registry — `stowage build` of a generated spec beside Buildah
 * building and pushing them one after another (`buildah bud --layers` + `buildah push` each).
 * Cold: a fresh registry (holding only the base), fresh stowage cache, fresh Buildah storage.
 * Warm: the same again right after, with caches, storage and registry as the cold run left them.
 * Bytes on the wire come from the counting proxy; requests from the registry's access log.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freshDir, interleave, removeTree, unavailable, type BenchContext, type Side, type Workload, type WorkloadRow } from '../lib/context.js';
import { combine, runChecked, type RunResult } from '../lib/process.js';
import { withRegistry, type BenchRegistry } from '../lib/registry.js';
import { summarize, type Sample } from '../lib/stats.js';
import { BUILDAH, createBuildahStore, seedRegistry, stowageHasCommand } from '../lib/tools.js';

export interface SharedBaseImage {
  name: string;
  destination: string;
}

export function imageDockerfile(name: string): string {
  return `ARG BASE\nFROM \${BASE}\nCOPY data.bin /srv/${name}.bin\nRUN echo ${name} > /etc/image-id && ls -l /srv > /etc/srv-listing\n`;
}

/** The images and their destinations: image k goes to repository k mod `repos`. */
export function sharedBaseImages(host: string, count: number, repos: number): SharedBaseImage[] {
  return Array.from({ length: count }, (_, k) => {
    const name = `img-${String(k).padStart(2, '0')}`;
    return { name, destination: `${host}/bench/svc-${k % repos}:${name}` };
  });
}

export function sharedBaseSpec(baseRef: string, images: readonly SharedBaseImage[]): string {
  const lines = ['version: 1', 'defaults:', '  push: true', 'images:'];
  for (const img of images) {
    lines.push(`  ${img.name}:`, `    context: ${img.name}`, '    args:', `      BASE: "${baseRef}"`, '    destinations:', `      - "${img.destination}"`);
  }
  return lines.join('\n') + '\n';
}

/** Writes each image's context (Dockerfile + 4 KB of random data); the data is the same for every run. */
async function writeContexts(dir: string, count: number): Promise<void> {
  for (let k = 0; k < count; k++) {
    const name = `img-${String(k).padStart(2, '0')}`;
    await mkdir(join(dir, name), { recursive: true });
    await writeFile(join(dir, name, 'data.bin'), randomBytes(4096));
    await writeFile(join(dir, name, 'Dockerfile'), imageDockerfile(name));
  }
}

/**
 * The push totals of `stowage build --metadata-file`, and how many images were reused unchanged
 * (no stage ran), as one line; undefined when absent.
 */
async function readPushStats(path: string): Promise<string | undefined> {
  try {
    const meta = JSON.parse(await readFile(path, 'utf8')) as { push?: Record<string, unknown>; images?: Record<string, { reused?: boolean }> };
    const p = meta.push;
    if (!p || typeof p !== 'object' || Object.keys(p).length === 0) return undefined;
    const images = Object.values(meta.images ?? {});
    const reused = `${images.filter((i) => i.reused === true).length} of ${images.length} images reused unchanged`;
    return `${Object.entries(p)
      .map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(', ')}; ${reused}`;
  } catch {
    return undefined;
  }
}

const settle = () => new Promise((r) => setTimeout(r, 150));

async function measureOnRegistry(reg: BenchRegistry, run: () => Promise<{ wallMs: number; cpuMs: number; maxRssKb: number }>): Promise<Sample> {
  const mark = reg.mark();
  const r = await run();
  await settle();
  return { ...r, ...reg.since(mark) };
}

export const sharedBase: Workload = {
  id: 'shared-base',
  title: 'images sharing one base, built and pushed',
  async run(ctx: BenchContext): Promise<WorkloadRow[]> {
    const count = ctx.quick ? 4 : 20;
    const repos = ctx.quick ? 2 : 5;
    const params = { images: count, repositories: repos };
    const root = await freshDir(ctx, 'shared-base');
    try {
      const contexts = join(root, 'contexts');
      await writeContexts(contexts, count);
      const env = { env: ctx.env, signal: ctx.signal };
      const warm: Record<string, Sample[]> = { stowage: [], buildah: [] };
      const hasBuild = await stowageHasCommand(ctx, 'build');
      const selfReported: string[] = [];

      const stowageRun = async (i: number): Promise<Sample> => {
        if (!hasBuild.ok) throw new Error(hasBuild.reason);
        return withRegistry(async (reg) => {
          const baseRef = `${reg.host}/base:1`;
          await seedRegistry(ctx, ctx.base, baseRef);
          const spec = join(contexts, 'stowage.yaml');
          await writeFile(spec, sharedBaseSpec(baseRef, sharedBaseImages(reg.host, count, repos)));
          const cache = join(root, `stowage-cache-${i}`);
          const build = (metadata: string) => runChecked(ctx.stowage, ['build', '-f', spec, '--cache-dir', cache, '--insecure-registry', reg.host, '--metadata-file', metadata], { ...env, cwd: contexts });
          try {
            const cold = await measureOnRegistry(reg, () => build(join(root, `meta-cold-${i}.json`)));
            warm.stowage!.push(await measureOnRegistry(reg, () => build(join(root, `meta-warm-${i}.json`))));
            if (i === 0) {
              for (const phase of ['cold', 'warm']) {
                const stats = await readPushStats(join(root, `meta-${phase}-${i}.json`));
                if (stats) selfReported.push(`stowage's own push report, ${phase} run 1: ${stats}`);
              }
            }
            return cold;
          } finally {
            await removeTree(cache);
          }
        });
      };

      const buildahRun = async (i: number): Promise<Sample> =>
        withRegistry(async (reg) => {
          const baseRef = `${reg.host}/base:1`;
          await seedRegistry(ctx, ctx.base, baseRef);
          const store = await createBuildahStore(ctx);
          const images = sharedBaseImages(reg.host, count, repos);
          const buildAll = async () => {
            const results: RunResult[] = [];
            for (const img of images) {
              results.push(await runChecked(BUILDAH, [...store.globalArgs, 'bud', ...store.budArgs, '--layers', '--build-arg', `BASE=${baseRef}`, '-t', img.destination, '-f', join(contexts, img.name, 'Dockerfile'), join(contexts, img.name)], env));
              results.push(await runChecked(BUILDAH, [...store.globalArgs, 'push', '--tls-verify=false', '--quiet', img.destination], env));
            }
            return combine(results);
          };
          try {
            const cold = await measureOnRegistry(reg, buildAll);
            warm.buildah!.push(await measureOnRegistry(reg, buildAll));
            return cold;
          } finally {
            await store.dispose();
          }
        });

      const cold = await interleave(ctx, 'shared-base', [
        { tool: 'stowage build', measure: stowageRun },
        { tool: 'buildah bud+push', measure: buildahRun },
      ]);
      const warmSide = (tool: string, key: string): Side => {
        const c = cold.get(tool)!;
        if (c.status !== 'ok') return c;
        const got = warm[key]!;
        return got.length === 0 ? unavailable(tool, 'no warm runs') : { tool, status: 'ok', summary: summarize(got) };
      };
      const notes = [`${count} images over ${repos} repositories; stowage: one 'stowage build' (default --jobs); Buildah: bud --layers + push per image, one after another`];
      return [
        { id: 'shared-base-cold', title: `${count} images on a shared base, cold`, params, stowage: cold.get('stowage build')!, peer: cold.get('buildah bud+push')!, notes: [...notes, ...selfReported] },
        { id: 'shared-base-warm', title: `${count} images on a shared base, warm (2nd run)`, params, stowage: warmSide('stowage build', 'stowage'), peer: warmSide('buildah bud+push', 'buildah'), notes: [] },
      ];
    } finally {
      await removeTree(root);
    }
  },
};
