import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runGraph, checkGraph, type Job } from '../../src/graph/scheduler.js';

const delay = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
    }, { once: true });
  });

test('runs dependencies first, each job once, and passes results along', async () => {
  const runs: string[] = [];
  const job = (id: string, deps: string[]): Job<string> => ({
    id,
    deps,
    async run({ deps: d, signal }) {
      runs.push(id);
      await delay(5, signal);
      return `${id}(${[...d.values()].join(',')})`;
    },
  });
  // Diamond: base is needed by app and worker; release needs both.
  const out = await runGraph({
    jobs: [job('release', ['app', 'worker']), job('app', ['base']), job('worker', ['base']), job('base', [])],
    failure: 'fail-fast',
  });
  assert.equal(runs.filter((r) => r === 'base').length, 1);
  assert.equal(runs[0], 'base');
  assert.equal(runs.at(-1), 'release');
  assert.equal(out.get('release')?.result, 'release(app(base()),worker(base()))');
  assert.ok([...out.values()].every((o) => o.status === 'succeeded'));
});

test('fail-fast aborts running work and does not start the rest', async () => {
  let slowSawAbort = false;
  const out = await runGraph<string>({
    failure: 'fail-fast',
    jobs: [
      { id: 'bad', deps: [], run: async () => { throw new Error('boom'); } },
      {
        id: 'slow', deps: [], run: async ({ signal }) => {
          try { await delay(5000, signal); } catch (e) { slowSawAbort = true; throw e; }
          return 'x';
        },
      },
      { id: 'after-slow', deps: ['slow'], run: async () => 'y' },
      { id: 'after-bad', deps: ['bad'], run: async () => 'z' },
    ],
  });
  assert.equal(out.get('bad')?.status, 'failed');
  assert.equal(slowSawAbort, true);
  assert.equal(out.get('slow')?.status, 'not-started');
  assert.equal(out.get('after-slow')?.status, 'not-started');
  assert.equal(out.get('after-bad')?.status, 'skipped');
  assert.equal(out.get('after-bad')?.blockedBy, 'bad');
});

test('keep-going builds everything that does not depend on a failure', async () => {
  const out = await runGraph<string>({
    failure: 'keep-going',
    jobs: [
      { id: 'bad', deps: [], run: async () => { throw new Error('boom'); } },
      { id: 'ok', deps: [], run: async ({ signal }) => { await delay(20, signal); return 'ok'; } },
      { id: 'needs-ok', deps: ['ok'], run: async () => 'fine' },
      { id: 'needs-bad', deps: ['bad'], run: async () => 'never' },
      { id: 'needs-needs-bad', deps: ['needs-bad'], run: async () => 'never' },
    ],
  });
  assert.equal(out.get('ok')?.status, 'succeeded');
  assert.equal(out.get('needs-ok')?.status, 'succeeded');
  assert.equal(out.get('needs-bad')?.status, 'skipped');
  assert.equal(out.get('needs-needs-bad')?.status, 'skipped');
  assert.equal(out.get('needs-needs-bad')?.blockedBy, 'bad');
});

test('cycles and unknown dependencies are rejected before anything runs', () => {
  assert.throws(() => checkGraph([{ id: 'a', deps: ['b'] }, { id: 'b', deps: ['a'] }]), /cycle: a -> b -> a/);
  assert.throws(() => checkGraph([{ id: 'a', deps: ['nope'] }]), /unknown job nope/);
});

test('many jobs listening on the run signal at once is no leak warning (a 50-image build used to print one)', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    const jobs: Job<number>[] = Array.from({ length: 50 }, (_, i) => ({ id: `j${i}`, deps: [], run: ({ signal }) => delay(5, signal).then(() => i) }));
    const outcomes = await runGraph({ jobs, failure: 'fail-fast' });
    assert.equal([...outcomes.values()].filter((o) => o.status === 'succeeded').length, 50);
    // Warnings are emitted on the next tick.
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings.filter((w) => w === 'MaxListenersExceededWarning'), []);
  } finally {
    process.off('warning', onWarning);
  }
});
