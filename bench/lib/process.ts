/**
 * Running the tools under measurement: each command runs under GNU time (`/usr/bin/time -v -o F`) so
 * its peak RSS is known, while the harness clocks the wall time itself with a monotonic clock.
 */
import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { parseGnuTimeVerbose } from './stats.js';

export const GNU_TIME = '/usr/bin/time';

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  signal: AbortSignal;
  /** Text written to the command's stdin. */
  input?: string;
}

export interface RunResult {
  exitCode: number | null;
  wallMs: number;
  cpuMs: number;
  maxRssKb: number;
  stdout: string;
  /** The last 4 KB of stderr, for error messages. */
  stderrTail: string;
}

/** Thrown when a measured command fails: the run is not a valid sample. */
export class CommandFailed extends Error {
  constructor(readonly command: string, readonly result: RunResult) {
    super(`${command} exited ${result.exitCode}: ${result.stderrTail.trim().split('\n').slice(-6).join('\n')}`);
  }
}

const TAIL = 4096;

function spawnCollect(file: string, args: string[], options: RunOptions): Promise<{ exitCode: number | null; stdout: string; stderrTail: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: (options.env ?? process.env) as NodeJS.ProcessEnv,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      signal: options.signal,
      // Own process group, so an abort can end the whole tree (buildah's and stowage's children too).
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (stdout.length < 1 << 20) stdout += d;
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-TAIL);
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
    const onAbort = () => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    options.signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      options.signal.removeEventListener('abort', onAbort);
      reject(e);
    });
    child.on('close', (code) => {
      options.signal.removeEventListener('abort', onAbort);
      resolve({ exitCode: code, stdout, stderrTail: stderr });
    });
  });
}

/** Runs `file args…` under GNU time; never throws for a non-zero exit (see `runChecked`). */
export async function runMeasured(file: string, args: string[], options: RunOptions): Promise<RunResult> {
  const timeFile = join(tmpdir(), `bench-time-${randomBytes(6).toString('hex')}.txt`);
  try {
    const start = process.hrtime.bigint();
    const r = await spawnCollect(GNU_TIME, ['-v', '-o', timeFile, file, ...args], options);
    const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
    const report = await readFile(timeFile, 'utf8').catch(() => '');
    const { maxRssKb, cpuMs } = parseGnuTimeVerbose(report);
    return { exitCode: r.exitCode, wallMs, cpuMs, maxRssKb, stdout: r.stdout, stderrTail: r.stderrTail };
  } finally {
    await rm(timeFile, { force: true });
  }
}

/** Like runMeasured, but a non-zero exit is an error (the sample would be meaningless). */
export async function runChecked(file: string, args: string[], options: RunOptions): Promise<RunResult> {
  const r = await runMeasured(file, args, options);
  if (r.exitCode !== 0) throw new CommandFailed([file, ...args].join(' ').slice(0, 300), r);
  return r;
}

/** A setup command that is not measured. */
export async function runPlain(file: string, args: string[], options: RunOptions): Promise<{ stdout: string }> {
  const r = await spawnCollect(file, args, options);
  if (r.exitCode !== 0) {
    throw new CommandFailed([file, ...args].join(' ').slice(0, 300), { ...r, wallMs: 0, cpuMs: 0, maxRssKb: Number.NaN });
  }
  return { stdout: r.stdout };
}

/** Sums several measured commands as one sample: wall times add up, peak RSS is the largest. */
export function combine(results: readonly RunResult[]): { wallMs: number; cpuMs: number; maxRssKb: number } {
  return {
    wallMs: results.reduce((a, r) => a + r.wallMs, 0),
    cpuMs: results.reduce((a, r) => a + r.cpuMs, 0),
    maxRssKb: results.reduce((a, r) => Math.max(a, r.maxRssKb), 0),
  };
}
