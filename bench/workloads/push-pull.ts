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
import { freshDir, reasonOf, removeTree, unavailable, type BenchContext, type Contender, type Side, type Workload, type WorkloadRow } from '../lib/context.js';
import { runChecked, runPlain } from '../lib/process.js';
import { startBenchRegistry, withRegistry } from '../lib/registry.js';
import { seedRegistry, SKOPEO } from '../lib/tools.js';
import { summarize, type Sample } from '../lib/stats.js';
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

/**
 * The harness's interleaved loop (stowage, peer, stowage, peer…), except that a contender may stop
 * after `maxRuns`: skopeo 1.9 takes minutes per copy of 2,000 layers (its CPU time grows faster
 * than the layer count), so in a full run it gets one run where stowage gets `ctx.runs`.
 */
async function interleaveCapped(ctx: BenchContext, label: string, contenders: readonly (Contender & { maxRuns?: number })[]): Promise<Map<string, Side>> {
  const samples = new Map<string, Sample[]>(contenders.map((c) => [c.tool, []]));
  const failed = new Map<string, string>();
  for (let i = 0; i < ctx.runs; i++) {
    for (const c of contenders) {
      if (failed.has(c.tool) || i >= (c.maxRuns ?? ctx.runs)) continue;
      ctx.signal.throwIfAborted();
      try {
        const sample = await c.measure(i);
        samples.get(c.tool)!.push(sample);
        ctx.log(`  ${label} ${c.tool} run ${i + 1}/${Math.min(ctx.runs, c.maxRuns ?? ctx.runs)}: ${Math.round(sample.wallMs)} ms, CPU ${Math.round(sample.cpuMs)} ms, peak RSS ${Math.round(sample.maxRssKb / 1024)} MiB`);
      } catch (e) {
        if (ctx.signal.aborted) throw e;
        failed.set(c.tool, reasonOf(e));
        ctx.log(`  ${label} ${c.tool}: unavailable: ${reasonOf(e)}`);
      }
    }
  }
  const out = new Map<string, Side>();
  for (const c of contenders) {
    const reason = failed.get(c.tool);
    const got = samples.get(c.tool)!;
    out.set(c.tool, reason !== undefined || got.length === 0 ? unavailable(c.tool, reason ?? 'no runs') : { tool: c.tool, status: 'ok', summary: summarize(got) });
  }
  return out;
}

interface Subject {
  /** Row id prefix and repository name. */
  id: string;
  what: string;
  params: Record<string, string | number>;
  layout: { dir: string; tag: string };
  /** Runs of skopeo (default: as many as stowage). */
  peerRuns?: number;
  /** Who puts the image into the pull registry (not measured): skopeo, unless it is too slow for it. */
  seedWith: 'skopeo' | 'stowage';
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
  const peerCap = subject.peerRuns !== undefined ? { maxRuns: subject.peerRuns } : {};
  const push = await interleaveCapped(ctx, `push ${id}`, [
    { tool: 'stowage copy', measure: (i) => pushOnce('stowage', i) },
    { tool: 'skopeo copy', measure: (i) => pushOnce('skopeo', i), ...peerCap },
  ]);
  const loadMid = loadNote();

  const reg = await startBenchRegistry();
  let pull;
  try {
    if (subject.seedWith === 'skopeo') await seedRegistry(ctx, layout, `${reg.host}/bench/${id}:1`);
    else await runPlain(ctx.stowage, ['copy', '--quiet', '--cache-dir', join(root, 'seed-cache'), `oci:${layout.dir}:${layout.tag}`, `${reg.host}/bench/${id}:1`], { env: ctx.env, signal: ctx.signal });
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
    pull = await interleaveCapped(ctx, `pull ${id}`, [
      { tool: 'stowage copy', measure: (i) => pullOnce('stowage', i) },
      { tool: 'skopeo copy', measure: (i) => pullOnce('skopeo', i), ...peerCap },
    ]);
  } finally {
    await reg.stop();
  }
  const loadAfter = loadNote();
  const peerNote = subject.peerRuns !== undefined && subject.peerRuns < ctx.runs ? [`skopeo: ${subject.peerRuns} run(s) (minutes each at this layer count), stowage: ${ctx.runs}`] : [];
  return [
    { id: `push-${id}`, title: `push ${subject.what} (oci → registry)`, params: subject.params, stowage: push.get('stowage copy')!, peer: push.get('skopeo copy')!, notes: [`fresh registry per run; load average (1/5 min) ${loadBefore} before, ${loadMid} after`, ...peerNote] },
    { id: `pull-${id}`, title: `pull ${subject.what} (registry → oci)`, params: subject.params, wire: 'down', stowage: pull.get('stowage copy')!, peer: pull.get('skopeo copy')!, notes: [`fresh output layout and stowage cache per run; load average (1/5 min) ${loadMid} before, ${loadAfter} after`, ...peerNote] },
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
        rows.push(...(await measureCopies(ctx, root, { id: 'big', what: bigWhat, params: bigParams, layout: big, seedWith: 'skopeo' })));
        await removeTree(big.dir);
      }

      const manyParams = { layers: layerCount };
      const manyWhat = `${layerCount.toLocaleString('en-US')} small layers`;
      const many = { dir: join(root, 'layout-many'), tag: 'many' };
      await mkdir(many.dir, { recursive: true });
      await writeManyLayerImage(many.dir, many.tag, layerCount, ctx.signal);
      // skopeo 1.9.3 pushes 2,000 layers in ~15 min (500 in ~70 s): one run of it, and stowage seeds.
      rows.push(...(await measureCopies(ctx, root, { id: 'many', what: manyWhat, params: manyParams, layout: many, seedWith: 'stowage', peerRuns: 1 })));
      return rows;
    } finally {
      await removeTree(root);
    }
  },
};
