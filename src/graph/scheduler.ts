/**
 * Runs a DAG of jobs: each job starts when all its dependencies succeeded, at most once
 * (single flight per id). Dependencies are awaited outside any concurrency limit — limits belong
 * around leaf work inside `run`, so a job waiting for its inputs never holds a slot.
 */
import { setMaxListeners } from 'node:events';
import { StowageError, isAbortError } from '../util/errors.js';

export type JobStatus = 'succeeded' | 'failed' | 'skipped' | 'not-started';

export interface Job<R> {
  id: string;
  deps: readonly string[];
  /** `deps` maps each dependency id to its result. */
  run(ctx: { signal: AbortSignal; deps: ReadonlyMap<string, R> }): Promise<R>;
}

export interface JobOutcome<R> {
  id: string;
  status: JobStatus;
  result?: R;
  error?: unknown;
  /** For skipped jobs: the failed dependency that caused the skip. */
  blockedBy?: string;
  startedAt?: number;
  endedAt?: number;
}

export type FailurePolicy = 'fail-fast' | 'keep-going';

export interface RunGraphOptions<R> {
  jobs: readonly Job<R>[];
  failure: FailurePolicy;
  signal?: AbortSignal;
  onStart?: (id: string) => void;
  onEnd?: (outcome: JobOutcome<R>) => void;
  now?: () => number;
}

/** Throws `graph/cycle` or `graph/unknown-dependency` before running anything. */
export function checkGraph(jobs: readonly { id: string; deps: readonly string[] }[]): void {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  for (const j of jobs) {
    for (const d of j.deps) {
      if (!byId.has(d)) throw new StowageError('graph/unknown-dependency', `job ${j.id} depends on unknown job ${d}`);
    }
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (id: string, path: string[]): void => {
    const s = state.get(id);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...path.slice(path.indexOf(id)), id];
      throw new StowageError('graph/cycle', `dependency cycle: ${cycle.join(' -> ')}`);
    }
    state.set(id, 'visiting');
    for (const d of byId.get(id)!.deps) visit(d, [...path, id]);
    state.set(id, 'done');
  };
  for (const j of jobs) visit(j.id, []);
}

export async function runGraph<R>(options: RunGraphOptions<R>): Promise<Map<string, JobOutcome<R>>> {
  const { jobs, failure } = options;
  const now = options.now ?? Date.now;
  checkGraph(jobs);
  const byId = new Map(jobs.map((j) => [j.id, j]));
  const outcomes = new Map<string, JobOutcome<R>>();
  const flights = new Map<string, Promise<JobOutcome<R>>>();

  // fail-fast aborts this controller; the caller's signal aborts it too.
  const abort = new AbortController();
  // Every job (and what it starts) listens on it while it runs: many at once is not a leak.
  setMaxListeners(0, abort.signal);
  const onOuterAbort = (): void => abort.abort(options.signal?.reason);
  if (options.signal?.aborted) abort.abort(options.signal.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });

  const finish = (o: JobOutcome<R>): JobOutcome<R> => {
    outcomes.set(o.id, o);
    options.onEnd?.(o);
    return o;
  };

  const start = (id: string): Promise<JobOutcome<R>> => {
    let flight = flights.get(id);
    if (flight) return flight;
    flight = (async (): Promise<JobOutcome<R>> => {
      const job = byId.get(id)!;
      const depOutcomes = await Promise.all(job.deps.map(start));
      const bad = depOutcomes.find((o) => o.status !== 'succeeded');
      if (bad) {
        const status: JobStatus = bad.status === 'not-started' ? 'not-started' : 'skipped';
        return finish({ id, status, blockedBy: bad.blockedBy ?? bad.id });
      }
      if (abort.signal.aborted) return finish({ id, status: 'not-started' });
      const startedAt = now();
      options.onStart?.(id);
      try {
        const deps = new Map(depOutcomes.map((o) => [o.id, o.result as R]));
        const result = await job.run({ signal: abort.signal, deps });
        return finish({ id, status: 'succeeded', result, startedAt, endedAt: now() });
      } catch (error) {
        // A job stopped by fail-fast is reported as not finished, not as a failure of its own.
        const stopped = abort.signal.aborted && isAbortError(error);
        const outcome = finish({ id, status: stopped ? 'not-started' : 'failed', error, startedAt, endedAt: now() });
        if (!stopped && failure === 'fail-fast') abort.abort(new StowageError('graph/fail-fast', `stopped because ${id} failed`));
        return outcome;
      }
    })();
    flights.set(id, flight);
    return flight;
  };

  try {
    await Promise.all(jobs.map((j) => start(j.id)));
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
  return outcomes;
}
