/**
 * What Node's fs cannot do: extended attributes, and timestamps with nanosecond precision (libuv
 * passes times as doubles, which lose the last ~8 bits at today's epoch). One `python3` process per
 * batch does them (python3 ships on every machine this project runs on); the per-file hot path never
 * spawns. Without python3, xattrs are skipped with a warning and times fall back to Node's utimes.
 */
import { spawn } from 'node:child_process';
import { existsSync, lutimesSync } from 'node:fs';
import { StowageError, errorMessage } from '../../util/errors.js';

const SCRIPT = String.raw`
import sys, os, json, base64
req = json.load(sys.stdin)
out = {"warnings": [], "xattrs": {}}
if req["op"] == "get":
    for p in req["paths"]:
        try:
            names = os.listxattr(p, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (61, 95, 2):
                out["warnings"].append("listxattr %s: %s" % (p, e.strerror))
            continue
        d = {}
        for n in names:
            try:
                d[n] = base64.b64encode(os.getxattr(p, n, follow_symlinks=False)).decode()
            except OSError as e:
                out["warnings"].append("getxattr %s %s: %s" % (p, n, e.strerror))
        if d:
            out["xattrs"][p] = d
else:
    for op in req["ops"]:
        p = op["path"]
        for n, v in op.get("xattrs", {}).items():
            try:
                os.setxattr(p, n, base64.b64decode(v), follow_symlinks=False)
            except OSError as e:
                out["warnings"].append("cannot set xattr %s on %s: %s" % (n, p, e.strerror))
        if "mtime" in op:
            ns = int(op["mtime"])
            try:
                os.utime(p, ns=(ns, ns), follow_symlinks=False)
            except OSError as e:
                out["warnings"].append("cannot set mtime on %s: %s" % (p, e.strerror))
json.dump(out, sys.stdout)
`;

/** The system python (version managers' shims add most of a second per start). */
function pythonPath(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

interface HelperReply {
  warnings: string[];
  xattrs: Record<string, Record<string, string>>;
}

export class HelperUnavailableError extends StowageError {}

async function runHelper(request: unknown, signal: AbortSignal | undefined): Promise<HelperReply> {
  return new Promise((resolve, reject) => {
    const child = spawn(pythonPath(), ['-S', '-c', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], signal });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') {
        reject(new HelperUnavailableError('engine/no-python', 'python3 is not installed; extended attributes cannot be read or written', { hint: 'install python3' }));
      } else reject(e);
    });
    child.stdin.on('error', () => {}); // a failed child reports through 'close'
    child.on('close', (code) => {
      if (code !== 0) {
        reject(new StowageError('engine/fs-helper-failed', `xattr/time helper failed: ${Buffer.concat(err).toString().trim().split('\n').pop() ?? ''}`));
        return;
      }
      try {
        resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as HelperReply);
      } catch (e) {
        reject(new StowageError('engine/fs-helper-failed', `xattr/time helper returned bad output: ${errorMessage(e)}`));
      }
    });
    child.stdin.end(JSON.stringify(request));
  });
}

export interface ReadXattrsResult {
  /** Only paths that have at least one xattr. */
  xattrs: Map<string, Record<string, Buffer>>;
  warnings: string[];
}

/** Reads all xattrs of `paths` (symlinks themselves, not their targets) in one helper run. */
export async function readXattrs(paths: readonly string[], signal?: AbortSignal): Promise<ReadXattrsResult> {
  if (paths.length === 0) return { xattrs: new Map(), warnings: [] };
  let reply: HelperReply;
  try {
    reply = await runHelper({ op: 'get', paths }, signal);
  } catch (e) {
    if (e instanceof HelperUnavailableError) return { xattrs: new Map(), warnings: [e.message] };
    throw e;
  }
  const xattrs = new Map<string, Record<string, Buffer>>();
  for (const [p, d] of Object.entries(reply.xattrs)) {
    const rec: Record<string, Buffer> = {};
    for (const [k, v] of Object.entries(d)) rec[k] = Buffer.from(v, 'base64');
    xattrs.set(p, rec);
  }
  return { xattrs, warnings: reply.warnings };
}

export interface MetadataOp {
  path: string;
  xattrs?: Readonly<Record<string, Uint8Array>>;
  mtimeNs?: bigint;
}

/**
 * Applies xattrs then mtimes, in the order given (put directories after their contents). Returns
 * warnings for what could not be applied.
 */
export async function applyMetadata(ops: readonly MetadataOp[], signal?: AbortSignal): Promise<string[]> {
  // Whole-second mtimes without xattrs (most layers' entries) are exact through Node: no subprocess.
  // Setting a file's time or xattrs never changes its directory's mtime, so splitting keeps the order's meaning.
  const warnings: string[] = [];
  const viaHelper: MetadataOp[] = [];
  for (const o of ops) {
    const plainTime = o.mtimeNs === undefined || o.mtimeNs % 1_000_000_000n === 0n;
    if (plainTime && (o.xattrs === undefined || Object.keys(o.xattrs).length === 0)) {
      if (o.mtimeNs === undefined) continue;
      const t = Number(o.mtimeNs / 1_000_000_000n);
      try {
        lutimesSync(o.path, t, t);
      } catch (err) {
        warnings.push(`cannot set mtime on ${o.path}: ${errorMessage(err)}`);
      }
    } else viaHelper.push(o);
  }
  return [...warnings, ...(await applyViaHelper(viaHelper, signal))];
}

async function applyViaHelper(ops: readonly MetadataOp[], signal?: AbortSignal): Promise<string[]> {
  if (ops.length === 0) return [];
  const wire = ops.map((o) => {
    const w: { path: string; xattrs?: Record<string, string>; mtime?: string } = { path: o.path };
    if (o.xattrs && Object.keys(o.xattrs).length > 0) {
      w.xattrs = {};
      for (const [k, v] of Object.entries(o.xattrs)) w.xattrs[k] = Buffer.from(v).toString('base64');
    }
    if (o.mtimeNs !== undefined) w.mtime = o.mtimeNs.toString();
    return w;
  });
  try {
    return (await runHelper({ op: 'set', ops: wire }, signal)).warnings;
  } catch (e) {
    if (!(e instanceof HelperUnavailableError)) throw e;
    const warnings = [e.message];
    for (const o of ops) {
      if (o.mtimeNs === undefined) continue;
      const t = Number(o.mtimeNs) / 1e9;
      try {
        lutimesSync(o.path, t, t);
      } catch (err) {
        warnings.push(`cannot set mtime on ${o.path}: ${errorMessage(err)}`);
      }
    }
    return warnings;
  }
}

const SERVER_SCRIPT = String.raw`
import sys, os, json, base64
for line in sys.stdin:
    req = json.loads(line)
    out = {"warnings": [], "xattrs": {}}
    for p in req["paths"]:
        try:
            names = os.listxattr(p, follow_symlinks=False)
        except OSError as e:
            if e.errno not in (61, 95, 2):
                out["warnings"].append("listxattr %s: %s" % (p, e.strerror))
            continue
        d = {}
        for n in names:
            try:
                d[n] = base64.b64encode(os.getxattr(p, n, follow_symlinks=False)).decode()
            except OSError as e:
                out["warnings"].append("getxattr %s %s: %s" % (p, n, e.strerror))
        if d:
            out["xattrs"][p] = d
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
`;

/**
 * Reads xattrs through one long-lived python3 process, so a stage's snapshots pay a pipe round trip
 * each instead of an interpreter start (~15–30 ms per step). Started early (`start`) its startup
 * overlaps the step it will be needed after. The process holds no event-loop reference while idle,
 * so a forgotten `close` cannot keep a build from exiting; it ends when its stdin closes.
 */
export class XattrReader {
  private child: ReturnType<typeof spawn> | undefined;
  private unavailable: string | undefined;
  private tail = '';
  private waiting: Array<{ resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  /** Requests run one at a time, in order. */
  private queue: Promise<unknown> = Promise.resolve();

  /** Spawns the helper now (idempotent). */
  start(): void {
    if (this.child !== undefined || this.unavailable !== undefined) return;
    const child = spawn(pythonPath(), ['-S', '-u', '-c', SERVER_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    let err = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (c: string) => {
      this.tail += c;
      for (let nl = this.tail.indexOf('\n'); nl >= 0; nl = this.tail.indexOf('\n')) {
        const line = this.tail.slice(0, nl);
        this.tail = this.tail.slice(nl + 1);
        this.waiting.shift()?.resolve(line);
      }
    });
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdin!.on('error', () => {}); // a dead child reports through 'close'
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') this.unavailable = 'python3 is not installed; extended attributes cannot be read or written';
      this.fail(e.code === 'ENOENT' ? new HelperUnavailableError('engine/no-python', this.unavailable!, { hint: 'install python3' }) : e);
    });
    child.on('close', (code) => {
      if (this.child === child) this.child = undefined;
      this.fail(new StowageError('engine/fs-helper-failed', `xattr helper exited (${code ?? 'signal'}): ${err.trim().split('\n').pop() ?? ''}`));
    });
    this.idle(true);
  }

  /** Reads all xattrs of `paths` (symlinks themselves, not their targets). */
  read(paths: readonly string[], signal?: AbortSignal): Promise<ReadXattrsResult> {
    const run = this.queue.then(() => this.request(paths, signal));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Ends the helper (it also ends by itself when this process exits). */
  close(): void {
    const child = this.child;
    this.child = undefined;
    child?.stdin?.end();
  }

  private async request(paths: readonly string[], signal: AbortSignal | undefined): Promise<ReadXattrsResult> {
    if (paths.length === 0) return { xattrs: new Map(), warnings: [] };
    signal?.throwIfAborted();
    this.start();
    const child = this.child;
    if (child === undefined) return { xattrs: new Map(), warnings: [this.unavailable ?? 'xattr helper unavailable'] };
    this.idle(false);
    const onAbort = (): void => {
      // The helper may be midway through a huge request: end it; the next read starts a new one.
      this.close();
      child.kill();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        this.waiting.push({ resolve, reject });
        child.stdin!.write(JSON.stringify({ paths }) + '\n');
      });
      signal?.throwIfAborted();
      let reply: HelperReply;
      try {
        reply = JSON.parse(line) as HelperReply;
      } catch (e) {
        throw new StowageError('engine/fs-helper-failed', `xattr helper returned bad output: ${errorMessage(e)}`);
      }
      const xattrs = new Map<string, Record<string, Buffer>>();
      for (const [p, d] of Object.entries(reply.xattrs)) {
        const rec: Record<string, Buffer> = {};
        for (const [k, v] of Object.entries(d)) rec[k] = Buffer.from(v, 'base64');
        xattrs.set(p, rec);
      }
      return { xattrs, warnings: reply.warnings };
    } catch (e) {
      if (e instanceof HelperUnavailableError) return { xattrs: new Map(), warnings: [e.message] };
      signal?.throwIfAborted();
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.idle(true);
    }
  }

  /** Idle: the helper's handles do not keep the event loop alive; busy: they do (a reply is awaited). */
  private idle(idle: boolean): void {
    const c = this.child;
    if (c === undefined) return;
    for (const s of [c.stdin, c.stdout, c.stderr] as Array<{ ref?: () => void; unref?: () => void } | null>) (idle ? s?.unref : s?.ref)?.call(s);
    if (idle) c.unref();
    else c.ref();
  }

  private fail(e: Error): void {
    for (const w of this.waiting.splice(0)) w.reject(e);
  }
}
