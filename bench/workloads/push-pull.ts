/**
 * Workload 4: one large layer (random bytes, so gzip cannot shrink it) pushed from an OCI layout to
 * the registry and pulled back into a fresh layout — `stowage copy` beside `skopeo copy`. Every push
 * goes to a fresh registry (otherwise the second tool would find the blob already there); pulls share
 * one seeded registry and write into a fresh layout and a fresh stowage cache each time.
 */
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { freshDir, interleave, reasonOf, removeTree, unavailable, type BenchContext, type Workload, type WorkloadRow } from '../lib/context.js';
import { runChecked, runPlain } from '../lib/process.js';
import { startBenchRegistry, withRegistry } from '../lib/registry.js';
import { seedRegistry, SKOPEO } from '../lib/tools.js';
import type { Sample } from '../lib/stats.js';

const MIB = 1024 * 1024;

async function writeRandomFile(path: string, bytes: number, signal: AbortSignal): Promise<void> {
  let left = bytes;
  const source = Readable.from(
    (function* () {
      while (left > 0) {
        const n = Math.min(left, 4 * MIB);
        left -= n;
        yield randomBytes(n);
      }
    })(),
  );
  await pipeline(source, createWriteStream(path), { signal });
}

/** Small settle time so the registry's access log has the run's last lines before we count them. */
const settle = () => new Promise((r) => setTimeout(r, 150));

export const pushPull: Workload = {
  id: 'push-pull',
  title: 'large layer push and pull',
  async run(ctx: BenchContext): Promise<WorkloadRow[]> {
    const sizeMiB = ctx.quick ? 32 : 500;
    const params = { layerMiB: sizeMiB };
    const root = await freshDir(ctx, 'push-pull');
    try {
      // The image: FROM scratch + one COPY of a random file, built by stowage (no RUN needed).
      const contextDir = join(root, 'context');
      await runPlain('mkdir', ['-p', contextDir], { signal: ctx.signal });
      await writeRandomFile(join(contextDir, 'big.bin'), sizeMiB * MIB, ctx.signal);
      await writeFile(join(contextDir, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /big.bin\n');
      const layout = { dir: join(root, 'layout'), tag: 'big' };
      try {
        await runPlain(ctx.stowage, ['executor', '--dockerfile', join(contextDir, 'Dockerfile'), '--context', contextDir, '--destination', `oci:${layout.dir}:${layout.tag}`, '--cache-dir', join(root, 'setup-cache'), '--reproducible'], { env: ctx.env, signal: ctx.signal });
      } catch (e) {
        const reason = `could not build the ${sizeMiB} MiB image: ${reasonOf(e)}`;
        return [
          { id: 'push', title: `push ${sizeMiB} MiB layer`, params, stowage: unavailable('stowage copy', reason), peer: unavailable('skopeo copy', reason), notes: [] },
          { id: 'pull', title: `pull ${sizeMiB} MiB layer`, params, stowage: unavailable('stowage copy', reason), peer: unavailable('skopeo copy', reason), notes: [] },
        ];
      }
      await removeTree(join(contextDir));
      await removeTree(join(root, 'setup-cache'));

      const pushOnce = async (tool: 'stowage' | 'skopeo', i: number): Promise<Sample> =>
        withRegistry(async (reg) => {
          const mark = reg.mark();
          const cache = join(root, `push-cache-${tool}-${i}`);
          const r =
            tool === 'stowage'
              ? await runChecked(ctx.stowage, ['copy', '--quiet', '--cache-dir', cache, `oci:${layout.dir}:${layout.tag}`, `${reg.host}/bench/big:${i}`], { env: ctx.env, signal: ctx.signal })
              : await runChecked(SKOPEO, ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout.dir}:${layout.tag}`, `docker://${reg.host}/bench/big:${i}`], { env: ctx.env, signal: ctx.signal });
          await removeTree(cache);
          await settle();
          const wire = reg.since(mark);
          return { wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb, ...wire };
        });
      const push = await interleave(ctx, 'push', [
        { tool: 'stowage copy', measure: (i) => pushOnce('stowage', i) },
        { tool: 'skopeo copy', measure: (i) => pushOnce('skopeo', i) },
      ]);

      const reg = await startBenchRegistry();
      let pull;
      try {
        await seedRegistry(ctx, layout, `${reg.host}/bench/big:1`);
        const pullOnce = async (tool: 'stowage' | 'skopeo', i: number): Promise<Sample> => {
          const out = join(root, `pulled-${tool}-${i}`);
          const cache = join(root, `pull-cache-${tool}-${i}`);
          try {
            const mark = reg.mark();
            const r =
              tool === 'stowage'
                ? await runChecked(ctx.stowage, ['copy', '--quiet', '--cache-dir', cache, `${reg.host}/bench/big:1`, `oci:${out}:big`], { env: ctx.env, signal: ctx.signal })
                : await runChecked(SKOPEO, ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/bench/big:1`, `oci:${out}:big`], { env: ctx.env, signal: ctx.signal });
            await settle();
            return { wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb, ...reg.since(mark) };
          } finally {
            await removeTree(out);
            await removeTree(cache);
          }
        };
        pull = await interleave(ctx, 'pull', [
          { tool: 'stowage copy', measure: (i) => pullOnce('stowage', i) },
          { tool: 'skopeo copy', measure: (i) => pullOnce('skopeo', i) },
        ]);
      } finally {
        await reg.stop();
      }
      return [
        { id: 'push', title: `push ${sizeMiB} MiB layer (oci → registry)`, params, stowage: push.get('stowage copy')!, peer: push.get('skopeo copy')!, notes: ['fresh registry per run'] },
        { id: 'pull', title: `pull ${sizeMiB} MiB layer (registry → oci)`, params, wire: 'down', stowage: pull.get('stowage copy')!, peer: pull.get('skopeo copy')!, notes: ['fresh output layout and stowage cache per run'] },
      ];
    } finally {
      await removeTree(root);
    }
  },
};
