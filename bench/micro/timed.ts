/**
 * One command measured through GNU time, for the micro benchmarks: wall ms (clocked here), CPU ms
 * (user+sys, children included) and peak RSS of the largest process. Asynchronous, so whatever else
 * this process serves meanwhile (a counting proxy, a token issuer) keeps running.
 */
import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export interface Timing {
  wall: number;
  cpu: number;
  rssMb: number;
}

export async function timedCommand(cmd: string, args: readonly string[], options: { env: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number }): Promise<Timing> {
  const t0 = performance.now();
  const child = spawn('/usr/bin/time', ['-f', '%U %S %M', cmd, ...args], { env: options.env, ...(options.cwd ? { cwd: options.cwd } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 300_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, string | null];
  clearTimeout(killer);
  const wall = performance.now() - t0;
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${code ?? signal}):\n${out}`);
  const [u, s, m] = out.trim().split('\n').pop()!.split(' ').map(Number);
  return { wall, cpu: (u! + s!) * 1000, rssMb: m! / 1024 };
}
