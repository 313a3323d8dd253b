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
