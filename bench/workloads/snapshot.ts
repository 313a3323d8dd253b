/**
 * Workload 2: the snapshot pair. One RUN creates 20,000 files (200 MB of random content), the next
 * deletes half, modifies ~1,000 and adds one — `stowage executor` (to an OCI layout) beside
 * `buildah bud --layers` (into its vfs storage) and plain `buildah bud` (one layer for the whole
 * build, the yardstick issue #5 sets its target against), each from a cold cache; stowage also with
 * `--single-snapshot` (one layer, like plain `buildah bud`). The same two scripts run in
 * a plain bwrap sandbox over the unpacked base give the cost of the commands alone; builder time
 * minus that is the builder's overhead (snapshots, layer tars, gzip, storage).
 */
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freshDir, interleave, medianOf, removeTree, type BenchContext, type Workload, type WorkloadRow } from '../lib/context.js';
import { combine, runChecked } from '../lib/process.js';
import { withRegistry } from '../lib/registry.js';
import { formatMs } from '../lib/stats.js';
import { BUILDAH, BWRAP, createBuildahStore, seedRegistry, unpackLayout } from '../lib/tools.js';
import { writeScripts } from './scripts.js';

export function snapshotDockerfile(files: number, bytes: number): string {
  return `ARG BASE\nFROM \${BASE}\nCOPY gen.sh mutate.sh /bench/\nRUN sh /bench/gen.sh ${files} ${bytes} /data\nRUN sh /bench/mutate.sh /data\n`;
}

/** bwrap arguments that run `argv` in `rootfs` with namespaces like a build step's, and nothing else. */
export function bwrapArgs(rootfs: string, argv: string[]): string[] {
  return ['--unshare-all', '--share-net', '--die-with-parent', '--bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', ...argv];
}

export const snapshotPair: Workload = {
  id: 'snapshot',
  title: 'snapshot pair',
  async run(ctx: BenchContext): Promise<WorkloadRow[]> {
    const files = ctx.quick ? 2_000 : 20_000;
    const bytes = ctx.quick ? 20_000_000 : 200_000_000;
    const title = `snapshot pair: RUN +${files.toLocaleString('en')} files/${bytes / 1e6} MB, RUN −half ~1k modified +1`;
    const root = await freshDir(ctx, 'snapshot');
    try {
      const contextDir = join(root, 'context');
      await mkdir(contextDir);
      await writeScripts(contextDir);
      await writeFile(join(contextDir, 'Dockerfile'), snapshotDockerfile(files, bytes));
      const rootfsTemplate = join(root, 'rootfs-template');
      await unpackLayout(ctx, ctx.base, rootfsTemplate);
      await mkdir(join(rootfsTemplate, 'bench'), { recursive: true });
      await cp(join(contextDir, 'gen.sh'), join(rootfsTemplate, 'bench', 'gen.sh'));
      await cp(join(contextDir, 'mutate.sh'), join(rootfsTemplate, 'bench', 'mutate.sh'));

      return await withRegistry(async (reg) => {
        const baseRef = `${reg.host}/base:1`;
        await seedRegistry(ctx, ctx.base, baseRef);
        const stowageSide = (tool: string, extra: string[]) => ({
          tool,
          measure: async (i: number) => {
            const cache = join(root, `cache-${i}`);
            const out = join(root, `out-${i}`);
            try {
              const r = await runChecked(
                ctx.stowage,
                ['executor', '--dockerfile', join(contextDir, 'Dockerfile'), '--context', contextDir, '--build-arg', `BASE=${baseRef}`, '--destination', `oci:${out}:snap`, '--cache-dir', cache, '--insecure-registry', reg.host, ...extra],
                { env: ctx.env, signal: ctx.signal },
              );
              return { wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb };
            } finally {
              await removeTree(cache);
              await removeTree(out);
            }
          },
        });
        const sides = await interleave(ctx, 'snapshot', [
          stowageSide('stowage executor', []),
          // Kaniko's --single-snapshot: one layer for the stage, what plain `buildah bud` commits.
          stowageSide('stowage executor --single-snapshot', ['--single-snapshot']),
          {
            tool: 'buildah bud --layers',
            measure: async (i) => {
              const store = await createBuildahStore(ctx);
              try {
                const r = await runChecked(BUILDAH, [...store.globalArgs, 'bud', ...store.budArgs, '--layers', '--build-arg', `BASE=${baseRef}`, '-t', `localhost/bench/snap:${i}`, '-f', join(contextDir, 'Dockerfile'), contextDir], { env: ctx.env, signal: ctx.signal });
                return { wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb };
              } finally {
                await store.dispose();
              }
            },
          },
          {
            // The yardstick: Buildah's default commits the whole build as one layer.
            tool: 'buildah bud (one layer)',
            measure: async (i) => {
              const store = await createBuildahStore(ctx);
              try {
                const r = await runChecked(BUILDAH, [...store.globalArgs, 'bud', ...store.budArgs, '--build-arg', `BASE=${baseRef}`, '-t', `localhost/bench/snap1:${i}`, '-f', join(contextDir, 'Dockerfile'), contextDir], { env: ctx.env, signal: ctx.signal });
                return { wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb };
              } finally {
                await store.dispose();
              }
            },
          },
          {
            tool: 'bwrap, commands only',
            measure: async (i) => {
              const rootfs = join(root, `rootfs-${i}`);
              await cp(rootfsTemplate, rootfs, { recursive: true, verbatimSymlinks: true });
              try {
                const gen = await runChecked(BWRAP, bwrapArgs(rootfs, ['/bin/sh', '/bench/gen.sh', String(files), String(bytes), '/data']), { env: ctx.env, signal: ctx.signal });
                const mutate = await runChecked(BWRAP, bwrapArgs(rootfs, ['/bin/sh', '/bench/mutate.sh', '/data']), { env: ctx.env, signal: ctx.signal });
                return combine([gen, mutate]);
              } finally {
                await removeTree(rootfs);
              }
            },
          },
        ]);
        const yardstick = sides.get('bwrap, commands only')!;
        const base = medianOf(yardstick);
        const overhead = (side: ReturnType<typeof sides.get>) => {
          const m = medianOf(side);
          return base === undefined || m === undefined ? undefined : m - base;
        };
        const rowFor = (id: string, stowageTool: string, peerTool: string, what: string): WorkloadRow => {
          const stowage = sides.get(stowageTool)!;
          const peer = sides.get(peerTool)!;
          const s = overhead(stowage);
          const p = overhead(peer);
          const notes: string[] = [];
          if (s !== undefined && p !== undefined) {
            notes.push(`builder overhead (total − commands alone): ${stowageTool} ${formatMs(s)}, ${peerTool} ${formatMs(p)} → ${(s / p).toFixed(2)}× (${what})`);
          }
          notes.push('cold: fresh stowage cache / fresh Buildah storage per run; base pulled from the local registry; stowage writes an OCI layout (gzip layers), Buildah commits to vfs storage uncompressed');
          const shown = stowageTool === 'stowage executor' ? `vs ${peerTool}` : `${stowageTool.replace('stowage executor ', '')} vs ${peerTool}`;
          return { id, title: `${title} (${shown})`, params: { files, bytes }, stowage, peer, yardstick, notes };
        };
        return [
          rowFor('snapshot', 'stowage executor', 'buildah bud --layers', 'both write one layer per step'),
          rowFor('snapshot-squashed', 'stowage executor', 'buildah bud (one layer)', 'the issue #5 target: at most half of this peer’s overhead, stowage writing one layer per step'),
          rowFor('snapshot-single', 'stowage executor --single-snapshot', 'buildah bud (one layer)', 'both write one layer for the build'),
        ];
      });
    } finally {
      await removeTree(root);
    }
  },
};
