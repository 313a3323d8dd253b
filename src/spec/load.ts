/**
 * loadSpec: the I/O edge of the spec. Reads the file (bounded), parses YAML with ranges, validates
 * against the schema, normalises (pure), then checks contexts and Dockerfiles on disk.
 * Every problem becomes a Diagnostic; nothing here throws at the user.
 */
import { promises as fsp, realpathSync, statSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { Diagnostic } from '../util/errors.js';
import { errorMessage, isAbortError } from '../util/errors.js';
import { createSpecValidator, checkSchema, type SpecValidator } from './schema.js';
import { isInside, normalizeSpec, type FsCheck } from './normalize.js';
import type { LoadResult } from './types.js';
import { parseYaml } from './yaml.js';

export type { LoadResult } from './types.js';

/** Larger specs are refused before parsing: the YAML parser needs about a second per few MB. */
export const MAX_SPEC_BYTES = 2 * 1024 * 1024;

export interface FileStat {
  isFile(): boolean;
  isDirectory(): boolean;
  size: number;
}

export interface LoadSpecOptions {
  /** `--var K=V` values; they win over `STOWAGE_VAR_K` in `env`, which wins over defaults. */
  vars?: Record<string, string>;
  /** Environment for `STOWAGE_VAR_*` lookups (default: none — pass process.env explicitly). */
  env?: Record<string, string | undefined>;
  /** File-system ports; the defaults use node:fs. */
  readFile?: (path: string, signal?: AbortSignal) => Promise<Uint8Array | string>;
  stat?: (path: string) => Promise<FileStat>;
  realpath?: (path: string) => Promise<string>;
  /** Paths in diagnostics are shown relative to this directory when inside it (default: process.cwd()). */
  cwd?: string;
  validator?: SpecValidator;
  signal?: AbortSignal;
  maxBytes?: number;
}

export async function loadSpec(file: string, options: LoadSpecOptions = {}): Promise<LoadResult> {
  const cwd = options.cwd ?? process.cwd();
  const abs = resolve(cwd, file);
  const rel = relative(cwd, abs);
  const displayFile = rel !== '' && isInside(cwd, abs) ? rel : abs;
  const readFile = options.readFile ?? ((p: string, signal?: AbortSignal) => fsp.readFile(p, { signal }));
  // Synchronous defaults behind the async ports: a spec names hundreds of contexts and Dockerfiles,
  // and a thread-pool round trip per stat costs more than the stat itself.
  const stat = options.stat ?? ((p: string) => syncAsPromise(() => statSync(p)));
  const realpath = options.realpath ?? ((p: string) => syncAsPromise(() => realpathSync.native(p)));
  const maxBytes = options.maxBytes ?? MAX_SPEC_BYTES;
  const fail = (code: string, message: string, hint?: string): LoadResult => ({ diagnostics: [{ file: displayFile, severity: 'error', code, message, hint }] });

  options.signal?.throwIfAborted();
  let st: FileStat;
  try {
    st = await stat(abs);
  } catch (e) {
    return fail(fsCode(e, 'spec'), `cannot read the spec: ${describeFsError(e)}`, fsHint(e));
  }
  // Refuse non-files before reading: a FIFO or /dev/zero would hang or never end.
  if (!st.isFile()) return fail('spec/not-a-file', st.isDirectory() ? 'the spec path is a directory' : 'the spec path is not a regular file', st.isDirectory() ? 'pass the YAML file, e.g. stowage.yaml' : undefined);
  if (st.size > maxBytes) return fail('spec/too-large', `the spec is ${st.size} bytes; the limit is ${maxBytes}`, 'split it into several specs');

  let bytes: Uint8Array | string;
  try {
    bytes = await readFile(abs, options.signal);
  } catch (e) {
    if (isAbortError(e)) throw e;
    return fail(fsCode(e, 'spec'), `cannot read the spec: ${describeFsError(e)}`, fsHint(e));
  }
  if (bytes.length > maxBytes) return fail('spec/too-large', `the spec is more than ${maxBytes} bytes`, 'split it into several specs');
  let text: string;
  try {
    text = typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('spec/encoding', 'the spec is not valid UTF-8', 'save the file as UTF-8');
  }
  if (text.startsWith('\uFEFF')) text = text.slice(1);

  const parsed = parseYaml(text, displayFile);
  const diagnostics: Diagnostic[] = [...parsed.diagnostics];
  if (parsed.value === undefined) return finish(diagnostics);

  const validator = options.validator ?? createSpecValidator();
  const schema = checkSchema(validator, parsed.value, displayFile, parsed.locate);
  diagnostics.push(...schema.diagnostics);
  if (schema.repaired === undefined) return finish(diagnostics);

  const norm = normalizeSpec({ data: schema.repaired, file: abs, displayFile, locate: parsed.locate, vars: options.vars ?? {}, env: options.env ?? {} });
  diagnostics.push(...norm.diagnostics);
  diagnostics.push(...(await runFsChecks(norm.fsChecks, { stat, realpath, signal: options.signal })));
  return finish(diagnostics, norm.spec);
}

function syncAsPromise<T>(f: () => T): Promise<T> {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
}

function finish(diagnostics: Diagnostic[], spec?: LoadResult['spec']): LoadResult {
  diagnostics.sort(compareDiagnostics);
  const hasError = diagnostics.some((d) => d.severity === 'error');
  return hasError || !spec ? { diagnostics } : { spec, diagnostics };
}

export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  const fa = a.file ?? '';
  const fb = b.file ?? '';
  if (fa !== fb) return fa < fb ? -1 : 1;
  const la = a.range?.start.line ?? 0;
  const lb = b.range?.start.line ?? 0;
  if (la !== lb) return la - lb;
  return (a.range?.start.column ?? 0) - (b.range?.start.column ?? 0);
}

async function runFsChecks(
  checks: FsCheck[],
  ports: { stat: (p: string) => Promise<FileStat>; realpath: (p: string) => Promise<string>; signal?: AbortSignal },
): Promise<Diagnostic[]> {
  const out: Diagnostic[] = [];
  const realCache = new Map<string, Promise<string | undefined>>();
  const real = (p: string) => {
    let r = realCache.get(p);
    if (!r) {
      r = ports.realpath(p).catch(() => undefined);
      realCache.set(p, r);
    }
    return r;
  };
  const one = async (c: FsCheck) => {
    const diag = (code: string, message: string, hint?: string) => out.push({ file: c.location.file, range: c.location.range, severity: 'error', code, message, hint });
    let st: FileStat;
    try {
      st = await ports.stat(c.path);
    } catch (e) {
      return diag(c.kind === 'directory' ? 'spec/context-missing' : 'spec/dockerfile-missing', `${c.what}: ${describeFsError(e)} (${c.path})`, c.kind === 'directory' ? 'the context is relative to the spec file' : 'the Dockerfile path is relative to the context');
    }
    if (c.kind === 'directory' && !st.isDirectory()) return diag('spec/context-missing', `${c.what} is not a directory (${c.path})`);
    if (c.kind === 'file' && !st.isFile()) return diag('spec/dockerfile-missing', `${c.what} is not a file (${c.path})`);
    if (c.mustStayInside) {
      const [inner, outer] = await Promise.all([real(c.path), real(c.mustStayInside)]);
      if (inner && outer && !isInside(outer, inner)) {
        diag('spec/context-outside', `${c.what} leads outside the spec's directory through a symbolic link (to ${inner})`, 'write the outside path explicitly (e.g. ../shared) if that is intended');
      }
    }
  };
  // Bounded parallelism: hundreds of images must not open hundreds of stats at once.
  const queue = [...checks];
  const workers = Array.from({ length: Math.min(16, queue.length) }, async () => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      ports.signal?.throwIfAborted();
      await one(c);
    }
  });
  await Promise.all(workers);
  return out;
}

function fsCode(e: unknown, area: string): string {
  const code = (e as { code?: string }).code;
  return code === 'ENOENT' || code === 'ENOTDIR' ? `${area}/not-found` : `${area}/unreadable`;
}

function describeFsError(e: unknown): string {
  switch ((e as { code?: string }).code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'ENOTDIR':
      return 'a parent of the path is not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    default:
      return errorMessage(e);
  }
}

function fsHint(e: unknown): string | undefined {
  const code = (e as { code?: string }).code;
  if (code === 'ENOENT') return 'check the path; specs are usually named stowage.yaml';
  if (code === 'EACCES' || code === 'EPERM') return 'check the file permissions';
  return undefined;
}
