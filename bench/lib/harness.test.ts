/**
 * Checks of the harness itself (not part of `npm test`, which never touches bench/):
 *   node --import tsx --test bench/lib/harness.test.ts
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { request } from 'undici';
import { median, parseGnuTimeVerbose, summarize, ratio } from './stats.js';
import { runMeasured } from './process.js';
import { renderMarkdown } from './report.js';
import { startBenchRegistry } from './registry.js';
import { unavailable } from './context.js';

test('median of odd and even counts, unsorted input', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('summary keeps wire counters only when every sample has them', () => {
  const s = summarize([
    { wallMs: 10, cpuMs: 5, maxRssKb: 100, bytesUp: 7 },
    { wallMs: 30, cpuMs: 9, maxRssKb: 300 },
  ]);
  assert.equal(s.medianMs, 20);
  assert.equal(s.medianCpuMs, 7);
  assert.equal(s.medianBytesUp, undefined);
  assert.equal(ratio(50, 100), 0.5);
  assert.equal(ratio(50, undefined), undefined);
});

test('GNU time report of a real process: peak RSS reflects what it allocated', async () => {
  const signal = new AbortController().signal;
  // A process that touches ~64 MB must report a peak RSS above that.
  const r = await runMeasured(process.execPath, ['-e', 'const b = Buffer.alloc(64 * 1024 * 1024, 1); console.log(b[5])'], { signal });
  assert.equal(r.exitCode, 0);
  assert.ok(r.maxRssKb > 64 * 1024, `peak RSS ${r.maxRssKb} KB`);
  assert.ok(r.cpuMs >= 0 && r.wallMs > 0);
  const parsed = parseGnuTimeVerbose('\tUser time (seconds): 1.25\n\tSystem time (seconds): 0.50\n\tMaximum resident set size (kbytes): 4242\n\tExit status: 3\n');
  assert.deepEqual(parsed, { maxRssKb: 4242, cpuMs: 1750, exitStatus: 3 });
});

test('the counting proxy sees an uploaded blob and the access log counts its requests', async () => {
  const reg = await startBenchRegistry();
  try {
    const blob = randomBytes(1 << 20);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const mark = reg.mark();
    const start = await request(`http://${reg.host}/v2/bench/x/blobs/uploads/`, { method: 'POST' });
    await start.body.dump();
    assert.equal(start.statusCode, 202);
    const location = new URL(String(start.headers.location), `http://${reg.host}`);
    location.searchParams.set('digest', digest);
    const put = await request(location, { method: 'PUT', body: blob, headers: { 'content-type': 'application/octet-stream' } });
    await put.body.dump();
    assert.equal(put.statusCode, 201);
    await new Promise((r) => setTimeout(r, 200));
    const wire = reg.since(mark);
    assert.ok(wire.bytesUp >= blob.length && wire.bytesUp < blob.length + 4096, `bytesUp ${wire.bytesUp}`);
    assert.equal(wire.requests, 2);
  } finally {
    await reg.stop();
  }
});

test('markdown table shows unavailable sides and their reasons, ratio only when both ran', () => {
  const md = renderMarkdown({
    meta: { date: '2026-12-03T00:00:00Z', commit: 'abc1234', dirty: false, quick: true, runs: 1, machine: { cpus: 2, cpuModel: 'x', memoryGiB: 1, kernel: 'k', tmpfs: true }, versions: {} },
    rows: [
      { id: 'a', title: 'build', params: {}, stowage: unavailable('stowage build', 'stowage build is not implemented yet'), peer: { tool: 'buildah', status: 'ok', summary: summarize([{ wallMs: 2000, cpuMs: 1000, maxRssKb: 1024 }]) }, notes: [] },
      { id: 'b', title: 'copy', params: {}, stowage: { tool: 's', status: 'ok', summary: summarize([{ wallMs: 1000, cpuMs: 1, maxRssKb: 1 }]) }, peer: { tool: 'p', status: 'ok', summary: summarize([{ wallMs: 4000, cpuMs: 1, maxRssKb: 1 }]) }, notes: [] },
    ],
  });
  assert.match(md, /\| build \| unavailable \| buildah \| 2\.00 s \| — \|/);
  assert.match(md, /\| copy \| 1\.00 s \| p \| 4\.00 s \| 0\.25× \|/);
  assert.match(md, /stowage build unavailable: stowage build is not implemented yet/);
});
