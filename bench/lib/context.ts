/**
 * What every workload gets from the harness, the result shape it hands back, and the interleaved
 * measurement loop (stowage, peer, stowage, peer…) that turns contenders into summaries.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { CommandFailed } from './process.js';
import { summarize, type Sample, type Summary } from './stats.js';

export interface BenchContext {
  quick: boolean;
  runs: number;
  signal: AbortSignal;
  /** A private directory on tmpfs for this bench run; removed at the end. */
  workDir: string;
  /** The stowage launcher (`bin/stowage` or a private build's). */
  stowage: string;
  /** The busybox base image as an OCI layout. */
  base: { dir: string; tag: string };
  /** Environment for every tool: TMPDIR on the tmpfs, a neutral locale. */
  env: Record<string, string | undefined>;
  log(message: string): void;
}

export type Side =
  | { tool: string; status: 'ok'; summary: Summary }
  | { tool: string; status: 'unavailable'; reason: string };

export interface WorkloadRow {
  id: string;
  title: string;
  params: Record<string, string | number>;
  stowage: Side;
  peer?: Side;
  /** A baseline with no builder at all (the commands alone in bwrap, `find` over the tree). */
  yardstick?: Side;
  /** Which direction's bytes the table shows: pushes and builds upload, pulls download. */
  wire?: 'up' | 'down';
  notes: string[];
}

export interface Workload {
  id: string;
  title: string;
  run(ctx: BenchContext): Promise<WorkloadRow[]>;
}

export interface Contender {
  tool: string;
  /** One measured run; `i` is the run's index (for unique tags and build args). */
  measure(i: number): Promise<Sample>;
}

/** Short reason text for a tool that failed, without a stack trace. */
export function reasonOf(e: unknown): string {
  if (e instanceof CommandFailed) return e.message.replace(/\s+/g, ' ').slice(0, 400);
  if (e instanceof Error) return e.message.replace(/\s+/g, ' ').slice(0, 400);
  return String(e).slice(0, 400);
}

/**
 * Runs each contender `runs` times, interleaved so that drift on a shared machine (other load,
 * page cache, thermal) hits every tool alike. A contender that fails is reported unavailable with
 * its error and not run again; the others go on.
 */
export async function interleave(ctx: BenchContext, label: string, contenders: readonly Contender[], runs = ctx.runs): Promise<Map<string, Side>> {
  const samples = new Map<string, Sample[]>(contenders.map((c) => [c.tool, []]));
  const failed = new Map<string, string>();
  for (let i = 0; i < runs; i++) {
    for (const c of contenders) {
      if (failed.has(c.tool)) continue;
      ctx.signal.throwIfAborted();
      try {
        const s = await c.measure(i);
        samples.get(c.tool)!.push(s);
        ctx.log(`  ${label} ${c.tool} run ${i + 1}/${runs}: ${Math.round(s.wallMs)} ms, peak RSS ${Math.round(s.maxRssKb / 1024)} MiB`);
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
    out.set(c.tool, reason !== undefined || got.length === 0 ? { tool: c.tool, status: 'unavailable', reason: reason ?? 'no runs' } : { tool: c.tool, status: 'ok', summary: summarize(got) });
  }
  return out;
}

export function unavailable(tool: string, reason: string): Side {
  return { tool, status: 'unavailable', reason };
}

/** A fresh directory under the bench's tmpfs root. */
export async function freshDir(ctx: BenchContext, prefix: string): Promise<string> {
  await mkdir(ctx.workDir, { recursive: true });
  return mkdtemp(join(ctx.workDir, `${prefix}-`));
}

/** Removes a tree without crossing into mounts a tool may have left behind. */
export async function removeTree(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

export function medianOf(side: Side | undefined): number | undefined {
  return side?.status === 'ok' ? side.summary.medianMs : undefined;
}
