/**
 * Workload: the small case of issue #5 — FROM busybox, RUN, COPY, RUN — from a cold cache each run
 * (the base pulled from the local registry and unpacked every time, as Kaniko does). What it
 * measures is the builder's fixed cost: process start, module loading, sandbox and snapshotter
 * set-up, one pull, a handful of steps. `stowage executor` → OCI layout beside `buildah bud`.
 * Kaniko (the yardstick: 0.29 s where Buildah took 2.0 s) is not installable here, so the
 * ratio against Buildah in the same run is what can be compared.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freshDir, interleave, removeTree, type BenchContext, type Workload, type WorkloadRow } from '../lib/context.js';
import { runChecked } from '../lib/process.js';
import { withRegistry } from '../lib/registry.js';
import { BUILDAH, createBuildahStore, seedRegistry } from '../lib/tools.js';

export const SMALL_DOCKERFILE = 'ARG BASE\nFROM ${BASE}\nRUN echo one > /one\nCOPY hello.txt /hello.txt\nRUN echo two > /two\n';

export const smallCase: Workload = {
  id: 'small',
  title: 'small case: FROM busybox, RUN, COPY, RUN',
  async run(ctx: BenchContext): Promise<WorkloadRow[]> {
    const root = await freshDir(ctx, 'small');
    try {
      const contextDir = join(root, 'context');
      await mkdir(contextDir);
      await writeFile(join(contextDir, 'hello.txt'), 'hello\n');
      await writeFile(join(contextDir, 'Dockerfile'), SMALL_DOCKERFILE);
      return await withRegistry(async (reg) => {
        const baseRef = `${reg.host}/base:1`;
        await seedRegistry(ctx, ctx.base, baseRef);
        const sides = await interleave(ctx, 'small', [
          {
            tool: 'stowage executor',
            measure: async (i) => {
              const cache = join(root, `cache-${i}`);
              const out = join(root, `out-${i}`);
              try {
                const r = await runChecked(
                  ctx.stowage,
                  ['executor', '--dockerfile', join(contextDir, 'Dockerfile'), '--context', contextDir, '--build-arg', `BASE=${baseRef}`, '--destination', `oci:${out}:small`, '--cache-dir', cache, '--insecure-registry', reg.host],
                  { env: ctx.env, signal: ctx.signal },
                );
                return { wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb };
              } finally {
                await removeTree(cache);
                await removeTree(out);
              }
            },
          },
          {
            tool: 'buildah bud',
            measure: async (i) => {
              const store = await createBuildahStore(ctx);
              try {
                const r = await runChecked(BUILDAH, [...store.globalArgs, 'bud', ...store.budArgs, '--build-arg', `BASE=${baseRef}`, '-t', `localhost/bench/small:${i}`, '-f', join(contextDir, 'Dockerfile'), contextDir], { env: ctx.env, signal: ctx.signal });
                return { wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb };
              } finally {
                await store.dispose();
              }
            },
          },
        ], ctx.quick ? ctx.runs : Math.max(ctx.runs, 5));
        return [
          {
            id: 'small',
            title: 'small case: FROM busybox, RUN, COPY, RUN (cold)',
            params: {},
            stowage: sides.get('stowage executor')!,
            peer: sides.get('buildah bud')!,
            notes: [
              'fresh stowage cache / fresh Buildah storage per run: the base is pulled and unpacked every time; stowage writes an OCI layout, Buildah commits to vfs storage',
              'issue #5 yardstick, measured on the issue author’s machine (not installable here): Kaniko 0.29 s where Buildah took 2.0 s, i.e. Kaniko ≈ 0.15× Buildah',
            ],
          },
        ];
      });
    } finally {
      await removeTree(root);
    }
  },
};
