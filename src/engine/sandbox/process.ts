/**
 * Running the sandbox's host process: output streaming with a bounded tail, bubblewrap's JSON
 * status pipe (to tell "the sandbox could not be set up" from "the command failed"), and abort =
 * SIGKILL to the whole process group.
 */
import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';

/** Keeps the last `max` lines of a byte stream (the partial last line counts). */
export class OutputTail {
  private readonly lines: string[] = [];
  private partial = '';
  /** Keeps a UTF-8 character split across two chunks intact. */
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    const text = this.partial + this.decoder.write(chunk);
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) this.add(p);
    // A line longer than 64 KiB without newline is cut so the tail stays bounded.
    if (this.partial.length > 65536) this.partial = this.partial.slice(-65536);
  }

  private add(line: string): void {
    if (this.max <= 0) return;
    this.lines.push(line.replace(/\r$/, ''));
    if (this.lines.length > this.max) this.lines.shift();
  }

  result(): string[] {
    const out = [...this.lines];
    if (this.partial !== '') {
      out.push(this.partial.replace(/\r$/, ''));
      if (out.length > this.max) out.shift();
    }
    return out;
  }
}

export interface SpawnSandboxOptions {
  file: string;
  args: string[];
  /** The host process's environment (the step's env for chroot/none; a clean one for bwrap). */
  env: Record<string, string>;
  cwd?: string;
  /** Credentials for the child set by Node itself (no setpriv); supplementary groups are then cleared. */
  uid?: number;
  gid?: number;
  signal: AbortSignal;
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
  tailLines: number;
  /** Open fd 3 as a pipe for `bwrap --json-status-fd 3`. */
  statusPipe: boolean;
  /** Contents written to fds 4, 5, … (after the status pipe) for `bwrap --ro-bind-data`. */
  dataFds?: Buffer[];
}

export interface SpawnSandboxResult {
  exitCode: number;
  outputTail: string[];
  /** Whether bubblewrap reported the child as started (only meaningful with `statusPipe`). */
  childStarted: boolean;
  /**
   * The command's exit code as bubblewrap reported it. bubblewrap writes it only when the command
   * really ran, so its absence (without abort) means the sandbox setup failed.
   */
  statusExitCode?: number;
  /** The first 16 KiB written to stderr (bubblewrap's own messages come first). */
  stderrHead: string;
  /** Set when spawning itself failed (ENOENT for a missing binary). */
  spawnError?: NodeJS.ErrnoException;
  aborted: boolean;
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

export function spawnSandbox(o: SpawnSandboxOptions): Promise<SpawnSandboxResult> {
  return new Promise((resolve) => {
    const tail = new OutputTail(o.tailLines);
    let childStarted = false;
    let statusExit: number | undefined;
    let stderrHead = '';
    let aborted = false;
    let settled = false;
    const child = spawn(o.file, o.args, {
      env: o.env,
      ...(o.cwd ? { cwd: o.cwd } : {}),
      ...(o.uid !== undefined ? { uid: o.uid } : {}),
      ...(o.gid !== undefined ? { gid: o.gid } : {}),
      stdio: o.statusPipe ? ['ignore', 'pipe', 'pipe', 'pipe', ...(o.dataFds ?? []).map(() => 'pipe' as const)] : ['ignore', 'pipe', 'pipe'],
      // Own process group, so abort can kill everything the step started.
      detached: true,
    });
    const kill = (): void => {
      aborted = true;
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    };
    o.signal.addEventListener('abort', kill, { once: true });
    (o.dataFds ?? []).forEach((data, i) => {
      const w = child.stdio[4 + i] as NodeJS.WritableStream | null;
      // EPIPE when bwrap failed before reading: its stderr says why.
      (w as unknown as { on(e: string, f: () => void): void } | null)?.on('error', () => undefined);
      w?.end(data);
    });

    child.stdout?.on('data', (chunk: Buffer) => {
      tail.push(chunk);
      o.onOutput?.(chunk, 'stdout');
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      if (stderrHead.length < 16384) stderrHead += chunk.toString('utf8');
      tail.push(chunk);
      o.onOutput?.(chunk, 'stderr');
    });
    const status = o.statusPipe ? (child.stdio[3] as NodeJS.ReadableStream | null) : null;
    let statusText = '';
    status?.on('data', (chunk: Buffer) => {
      statusText += chunk.toString('utf8');
      // bubblewrap writes one JSON object per line: {"child-pid": N, ...} then {"exit-code": N}.
      let nl;
      while ((nl = statusText.indexOf('\n')) >= 0) {
        const line = statusText.slice(0, nl);
        statusText = statusText.slice(nl + 1);
        try {
          const obj = JSON.parse(line) as Record<string, unknown>;
          if (typeof obj['child-pid'] === 'number') childStarted = true;
          if (typeof obj['exit-code'] === 'number') statusExit = obj['exit-code'];
        } catch {
          // not ours to interpret
        }
      }
    });
    const finish = (r: SpawnSandboxResult): void => {
      if (settled) return;
      settled = true;
      o.signal.removeEventListener('abort', kill);
      resolve(r);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      finish({ exitCode: -1, outputTail: tail.result(), childStarted, stderrHead, spawnError: err, aborted });
    });
    child.on('close', (code, sig) => {
      const exitCode = statusExit ?? code ?? 128 + (sig ? (SIGNALS[sig] ?? 0) : 0);
      finish({ exitCode, outputTail: tail.result(), childStarted, stderrHead, aborted, ...(statusExit !== undefined ? { statusExitCode: statusExit } : {}) });
    });
    if (o.signal.aborted) kill();
  });
}
