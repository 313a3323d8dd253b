/**
 * Where the heavy pair's peak memory comes from: one `stowage executor` build of the heavy pair's
 * Dockerfile (bench/workloads/snapshot.ts) with its RSS sampled every 10 ms from /proc, printed as a
 * timeline beside the build's own output (step starts), with the peak at the end. Run with
 * `--node-flags '--trace-gc'` to see V8's heap sizes in the same timeline (flags replace the
 * launcher's shebang flags: `node FLAGS bin/stowage`).
 *
 * Usage: node --import tsx bench/micro/rss-timeline.ts [--files 20000] [--bytes 200000000] [--node-flags '…']
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { snapshotDockerfile } from '../workloads/snapshot.js';
import { writeScripts } from '../workloads/scripts.js';
import { pushBusyboxBase } from './base-image.js';
import { startRegistry } from '../../test/helpers/registry.js';
import { flag as arg } from './flags.js';

const FILES = Number(arg('files', '20000'));
const BYTES = Number(arg('bytes', '200000000'));
const NODE_FLAGS = arg('node-flags', '').split(' ').filter((f) => f !== '');
const STOWAGE = resolve(import.meta.dirname, '../../bin/stowage');

mkdirSync('/dev/shm/stowage-micro', { recursive: true });
const work = mkdtempSync('/dev/shm/stowage-micro/rss-');
process.env.TMPDIR = work;
const registry = await startRegistry();
try {
  const ref = `${registry.host}/base:1`;
  await pushBusyboxBase(ref);
  const ctx = join(work, 'context');
  mkdirSync(ctx);
  await writeScripts(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), snapshotDockerfile(FILES, BYTES));
  const args = ['executor', '--dockerfile', join(ctx, 'Dockerfile'), '--context', ctx, '--build-arg', `BASE=${ref}`, '--destination', `oci:${work}/out:x`, '--cache-dir', `${work}/cache`, '--insecure-registry', registry.host];
  const [cmd, ...argv] = NODE_FLAGS.length > 0 ? [process.execPath, ...NODE_FLAGS, STOWAGE, ...args] : [STOWAGE, ...args];
  const child = spawn(cmd!, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const t0 = Date.now();
  const lines: string[] = [];
  let shown = 0;
  let peak = 0;
  const onData = (d: Buffer): void => {
    for (const l of d.toString().split('\n')) if (l.trim() !== '') lines.push(`${String(Date.now() - t0).padStart(6)} ms  ${l.slice(0, 140)}`);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const sampler = setInterval(() => {
    try {
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
      peak = Math.max(peak, rss);
      if (Math.abs(rss - shown) >= 4) {
        lines.push(`${String(Date.now() - t0).padStart(6)} ms  RSS ${rss.toFixed(0)} MiB`);
        shown = rss;
      }
    } catch {
      // the process has exited
    }
  }, 10);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  clearInterval(sampler);
  console.log(lines.join('\n'));
  console.log(`exit ${code}; peak RSS (sampled) ${peak.toFixed(0)} MiB`);
} finally {
  await registry.stop();
  rmSync(work, { recursive: true, force: true });
}
