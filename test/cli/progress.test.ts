import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseProgressMode, createProgress, renderSummaryTable, type ProgressMode, type SummaryRow } from '../../src/cli/progress.js';

function sink(): { out: NodeJS.WritableStream; text: () => string } {
  let text = '';
  const out = { write: (s: string) => ((text += s), true), columns: 200 } as unknown as NodeJS.WritableStream;
  return { out, text: () => text };
}

const rows: SummaryRow[] = [
  { image: 'api', status: 'succeeded', digest: `sha256:${'a'.repeat(64)}`, size: 3 * 1024 * 1024, seconds: 1.25, cacheHits: 2 },
  { image: 'base', status: 'succeeded', digest: `sha256:${'b'.repeat(64)}`, size: 2048, seconds: 0.05, cacheHits: 4, reused: true },
  { image: 'web', status: 'failed', seconds: 0.4, error: 'Dockerfile:3: RUN failed' },
  { image: 'worker', status: 'not-started' },
];

test('the summary table has image, status, digest, size, time and cache hits', () => {
  const lines = renderSummaryTable(rows).trimEnd().split('\n');
  assert.match(lines[0]!, /^IMAGE\s+STATUS\s+DIGEST\s+SIZE\s+TIME\s+CACHE$/);
  assert.match(lines[1]!, /^api\s+succeeded\s+sha256:aaaaaaaaaaaa\s+3\.0 MiB\s+1\.3s\s+2 hits$/);
  assert.match(lines[2]!, /^base\s+succeeded\s+sha256:bbbbbbbbbbbb\s+2\.0 KiB\s+0\.1s\s+reused \(4 steps\)$/);
  assert.match(lines[3]!, /^web\s+failed\s+-\s+-\s+0\.4s\s+-$/);
  assert.match(lines[4]!, /^worker\s+not-started\s+-\s+-\s+-\s+-$/);
});

test('mode: a flag wins; CI=true or no terminal means plain lines; a terminal gets the live view', () => {
  const cases: [string | undefined, Record<string, string>, boolean, ProgressMode][] = [
    [undefined, {}, true, 'tty'],
    [undefined, {}, false, 'plain'],
    [undefined, { CI: 'true' }, true, 'plain'],
    ['json', { CI: 'true' }, true, 'json'],
    ['tty', {}, false, 'tty'],
  ];
  for (const [flag, env, isTTY, want] of cases) assert.equal(chooseProgressMode(flag, env, isTTY), want, JSON.stringify({ flag, env, isTTY }));
});

function drive(mode: ProgressMode): string {
  const s = sink();
  let t = 0;
  const p = createProgress({ mode, out: s.out, now: () => (t += 100) });
  p.info('RUN isolation: bwrap');
  p.imageStart('api');
  p.event('api', { type: 'step-start', stage: 0, line: 4, text: 'RUN make   all' });
  p.event('api', { type: 'output', stage: 0, line: 4, stream: 'stdout', chunk: Buffer.from('compiling\ndone\n') });
  p.event('api', { type: 'step-done', stage: 0, line: 4, layer: `sha256:${'c'.repeat(64)}` });
  p.event('api', { type: 'cache-hit', stage: 0, line: 5, key: `sha256:${'d'.repeat(64)}`, source: 'local' });
  p.phase('api', 'writing registry.example/api:1');
  p.bytesSent('api', 1536 * 1024);
  p.bytesSent('api', 512 * 1024);
  p.imageDone(rows[0]!);
  p.finish(rows);
  return s.text();
}

test('plain mode: one prefixed line per event, RUN output indented, then the summary', () => {
  const text = drive('plain');
  assert.match(text, /^stowage: RUN isolation: bwrap$/m);
  assert.match(text, /^\[api\] started$/m);
  assert.match(text, /^\[api\] 4: RUN make all$/m);
  assert.match(text, /^\[api\]   \| compiling$/m);
  assert.match(text, /^\[api\] 5: CACHED$/m);
  assert.match(text, /^\[api\] succeeded sha256:a{64} \(1\.3s\)$/m);
  assert.match(text, /^IMAGE\s+STATUS/m);
  assert.doesNotMatch(text, /\x1b\[/, 'no terminal control sequences in plain mode');
});

test('live view: one line per image with time, layers and bytes sent, settling into the summary table', () => {
  const text = drive('tty');
  // The last frame before the table shows the finished image with what its push sent.
  const frames = text.split('\x1b[');
  const last = frames[frames.length - 1]!;
  assert.match(last, /✔ api {2}1\.3s {2}1 layer\(s\) {2}2\.0 MiB sent {2}succeeded/);
  assert.match(last, /IMAGE\s+STATUS\s+DIGEST\s+SIZE\s+TIME\s+CACHE/);
  assert.match(text, /stowage: RUN isolation: bwrap/);
});

test('json mode: every line is one JSON event with a time; bytes are not streamed as events', () => {
  const lines = drive('json').trimEnd().split('\n');
  const events = lines.map((l) => JSON.parse(l) as { type: string; time: string; image?: string; text?: string });
  assert.ok(events.every((e) => typeof e.time === 'string' && !Number.isNaN(Date.parse(e.time))));
  assert.deepEqual(
    events.map((e) => e.type),
    ['info', 'image-start', 'step-start', 'output', 'step-done', 'cache-hit', 'phase', 'image-done', 'summary'],
  );
  assert.equal(events.find((e) => e.type === 'output')!.text, 'compiling\ndone\n');
});
