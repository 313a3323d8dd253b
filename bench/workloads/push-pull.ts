/**
 * Workload 4: two images pushed from an OCI layout to the registry and pulled back into a fresh
 * layout — `stowage copy` beside `skopeo copy`:
 *   - one large layer (random bytes, so gzip cannot shrink it): streaming throughput and memory;
 *   - 2,000 small layers (issue #3): per-blob overhead (requests, auth, fs syscalls, fsync).
 * Every push goes to a fresh registry (otherwise the second tool would find the blobs already
 * there); pulls share one seeded registry and write into a fresh layout and a fresh stowage cache
 * each time. The machine's load average is noted beside each pair, since the machine is shared.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { freshDir, interleave, reasonOf, removeTree, unavailable, type BenchContext, type Workload, type WorkloadRow } from '../lib/context.js';
import { runChecked, runPlain } from '../lib/process.js';
import { startBenchRegistry, withRegistry } from '../lib/registry.js';
import { seedRegistry, SKOPEO } from '../lib/tools.js';
import type { Sample } from '../lib/stats.js';
import { makeImage, makeLayer } from '../../test/registry/fixtures.js';
import { writeImageToLayout } from '../../src/store/oci-layout.js';

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

/** Load averages (1, 5 min) as text, for the notes: wall ratios mean little on a loaded machine. */
function loadNote(): string {
  const [one, five] = loadavg();
  return `${one!.toFixed(2)}/${five!.toFixed(2)}`;
}

/**
 * An image of `count` small layers (one file of 512–2,048 random bytes each) written straight into
 * an OCI layout: building it with 2,000 COPY steps would measure the builder, not the copy.
 */
async function writeManyLayerImage(dir: string, tag: string, count: number, signal: AbortSignal): Promise<void> {
  const layers = [];
  for (let i = 0; i < count; i++) {
    layers.push(await makeLayer({ [`layers/${String(i).padStart(5, '0')}`]: randomBytes(512 + ((i * 7919) % 1537)) }));
  }
  await writeImageToLayout(dir, makeImage(layers), { tags: [tag], signal, concurrency: 8 });
}

interface Subject {
  /** Row id prefix and repository name. */
  id: string;
  what: string;
  params: Record<string, string | number>;
  layout: { dir: string; tag: string };
}

/** Push (fresh registry per run) and pull (one seeded registry, fresh output per run) of one image. */
async function measureCopies(ctx: BenchContext, root: string, subject: Subject): Promise<WorkloadRow[]> {
  const { layout, id } = subject;
  const loadBefore = loadNote();
  const pushOnce = async (tool: 'stowage' | 'skopeo', i: number): Promise<Sample> =>
    withRegistry(async (reg) => {
      const mark = reg.mark();
      const cache = join(root, `push-cache-${tool}-${i}`);
      const r =
        tool === 'stowage'
          ? await runChecked(ctx.stowage, ['copy', '--quiet', '--cache-dir', cache, `oci:${layout.dir}:${layout.tag}`, `${reg.host}/bench/${id}:${i}`], { env: ctx.env, signal: ctx.signal })
          : await runChecked(SKOPEO, ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout.dir}:${layout.tag}`, `docker://${reg.host}/bench/${id}:${i}`], { env: ctx.env, signal: ctx.signal });
      await removeTree(cache);
      await settle();
      const wire = reg.since(mark);
      return { wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb, ...wire };
    });
  const push = await interleave(ctx, `push ${id}`, [
    { tool: 'stowage copy', measure: (i) => pushOnce('stowage', i) },
    { tool: 'skopeo copy', measure: (i) => pushOnce('skopeo', i) },
  ]);
  const loadMid = loadNote();

  const reg = await startBenchRegistry();
  let pull;
  try {
    await seedRegistry(ctx, layout, `${reg.host}/bench/${id}:1`);
    const pullOnce = async (tool: 'stowage' | 'skopeo', i: number): Promise<Sample> => {
      const out = join(root, `pulled-${tool}-${i}`);
      const cache = join(root, `pull-cache-${tool}-${i}`);
      try {
        const mark = reg.mark();
        const r =
          tool === 'stowage'
            ? await runChecked(ctx.stowage, ['copy', '--quiet', '--cache-dir', cache, `${reg.host}/bench/${id}:1`, `oci:${out}:${id}`], { env: ctx.env, signal: ctx.signal })
            : await runChecked(SKOPEO, ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/bench/${id}:1`, `oci:${out}:${id}`], { env: ctx.env, signal: ctx.signal });
        await settle();
        return { wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb, ...reg.since(mark) };
      } finally {
        await removeTree(out);
        await removeTree(cache);
      }
    };
    pull = await interleave(ctx, `pull ${id}`, [
      { tool: 'stowage copy', measure: (i) => pullOnce('stowage', i) },
      { tool: 'skopeo copy', measure: (i) => pullOnce('skopeo', i) },
    ]);
  } finally {
    await reg.stop();
  }
  const loadAfter = loadNote();
  return [
    { id: `push-${id}`, title: `push ${subject.what} (oci → registry)`, params: subject.params, stowage: push.get('stowage copy')!, peer: push.get('skopeo copy')!, notes: [`fresh registry per run; load average (1/5 min) ${loadBefore} before, ${loadMid} after`] },
    { id: `pull-${id}`, title: `pull ${subject.what} (registry → oci)`, params: subject.params, wire: 'down', stowage: pull.get('stowage copy')!, peer: pull.get('skopeo copy')!, notes: [`fresh output layout and stowage cache per run; load average (1/5 min) ${loadMid} before, ${loadAfter} after`] },
  ];
}

function unavailableRows(id: string, what: string, params: Record<string, string | number>, reason: string): WorkloadRow[] {
  return ['push', 'pull'].map((dir) => ({
    id: `${dir}-${id}`,
    title: `${dir} ${what}`,
    params,
    stowage: unavailable('stowage copy', reason),
    peer: unavailable('skopeo copy', reason),
    notes: [],
  }));
}

export const pushPull: Workload = {
  id: 'push-pull',
  title: 'push and pull: one large layer, 2,000 small layers',
  async run(ctx: BenchContext): Promise<WorkloadRow[]> {
    const sizeMiB = ctx.quick ? 32 : 500;
    const layerCount = ctx.quick ? 200 : 2000;
    const root = await freshDir(ctx, 'push-pull');
    const rows: WorkloadRow[] = [];
    try {
      // The large image: FROM scratch + one COPY of a random file, built by stowage (no RUN needed).
      const bigParams = { layerMiB: sizeMiB };
      const bigWhat = `${sizeMiB} MiB layer`;
      const contextDir = join(root, 'context');
      await runPlain('mkdir', ['-p', contextDir], { signal: ctx.signal });
      await writeRandomFile(join(contextDir, 'big.bin'), sizeMiB * MIB, ctx.signal);
      await writeFile(join(contextDir, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /big.bin\n');
      const big = { dir: join(root, 'layout-big'), tag: 'big' };
      let built = true;
      try {
        await runPlain(ctx.stowage, ['executor', '--dockerfile', join(contextDir, 'Dockerfile'), '--context', contextDir, '--destination', `oci:${big.dir}:${big.tag}`, '--cache-dir', join(root, 'setup-cache'), '--reproducible'], { env: ctx.env, signal: ctx.signal });
      } catch (e) {
        built = false;
        rows.push(...unavailableRows('big', bigWhat, bigParams, `could not build the ${sizeMiB} MiB image: ${reasonOf(e)}`));
      }
      await removeTree(contextDir);
      await removeTree(join(root, 'setup-cache'));
      if (built) {
        rows.push(...(await measureCopies(ctx, root, { id: 'big', what: bigWhat, params: bigParams, layout: big })));
        await removeTree(big.dir);
      }

      const manyParams = { layers: layerCount };
      const manyWhat = `${layerCount.toLocaleString('en-US')} small layers`;
      const many = { dir: join(root, 'layout-many'), tag: 'many' };
      await mkdir(many.dir, { recursive: true });
      await writeManyLayerImage(many.dir, many.tag, layerCount, ctx.signal);
      rows.push(...(await measureCopies(ctx, root, { id: 'many', what: manyWhat, params: manyParams, layout: many })));
      return rows;
    } finally {
      await removeTree(root);
    }
  },
};
