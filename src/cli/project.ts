/**
 * Loads what every spec command needs: the spec, and each Dockerfile it names, read and parsed
 * once (several images often share one Dockerfile, and generated Dockerfiles often share content).
 * The I/O edge for lint, plan and build.
 */
import { readFileSync } from 'node:fs';
import { relative, isAbsolute } from 'node:path';
import { parseRaw, type RawParseResult } from '../dockerfile/ast.js';
import { parseDockerfileFromRaw } from '../dockerfile/parse.js';
import type { ParseResult } from '../dockerfile/types.js';
import type { ParsedDockerfile } from '../graph/compile.js';
import { loadSpec } from '../spec/load.js';
import type { BuildSpec, SpecImage } from '../spec/types.js';
import type { Diagnostic } from '../util/errors.js';

export interface Project {
  spec?: BuildSpec;
  /** Keyed by absolute Dockerfile path; present for every Dockerfile that could be read. */
  dockerfiles: Map<string, ParsedDockerfile>;
  diagnostics: Diagnostic[];
}

export interface LoadProjectOptions {
  file: string;
  vars: Record<string, string>;
  env: Record<string, string | undefined>;
  cwd: string;
  /**
   * Keep each Dockerfile's line-level parse (`ParsedDockerfile.raw`) for the build checks. Off by
   * default: hundreds of kept parses only make every garbage collection copy more.
   */
  keepRaw?: boolean;
}

/** Dockerfiles larger than this are refused rather than parsed (a Dockerfile is text, not data). */
const MAX_DOCKERFILE_BYTES = 4 * 1024 * 1024;

export function displayPath(cwd: string, absolute: string): string {
  if (!isAbsolute(absolute)) return absolute;
  // The common case, a normalised path below cwd, without path.relative's general work.
  if (absolute.length > cwd.length + 1 && absolute[cwd.length] === '/' && absolute.startsWith(cwd) && isNormalRelative(cwd.slice(1)) && isNormalRelative(absolute.slice(cwd.length + 1))) {
    return absolute.slice(cwd.length + 1);
  }
  const rel = relative(cwd, absolute);
  return rel === '' ? '.' : rel.startsWith('../../') ? absolute : rel;
}

/** Non-empty, with no empty, `.` or `..` segments and no slash at either end: a normalised relative path. */
function isNormalRelative(p: string): boolean {
  return p !== '' && !/^\/|(?:^|\/)\.{1,2}(?:\/|$)|\/\/|\/$/.test(p);
}

export async function loadProject(options: LoadProjectOptions): Promise<Project> {
  const loaded = await loadSpec(options.file, { vars: options.vars, env: options.env });
  const diagnostics: Diagnostic[] = [...loaded.diagnostics];
  const dockerfiles = new Map<string, ParsedDockerfile>();
  const spec = loaded.spec;
  if (!spec) return { dockerfiles, diagnostics };

  const users = new Map<string, SpecImage>();
  for (const img of spec.images) if (!users.has(img.dockerfile)) users.set(img.dockerfile, img);
  // Equal text parses to the same model; only the file named in its diagnostics differs.
  const parsedByText = new Map<string, { file: string; result: ParseResult; raw: RawParseResult }>();
  for (const [path, image] of users) {
    const shown = displayPath(options.cwd, path);
    const at = image.source.fields['dockerfile'] ?? image.source.fields['context'] ?? image.source.image;
    let bytes: Buffer;
    try {
      // Synchronous: hundreds of small files read one after another cost far less than as many
      // promise round trips through the thread pool, and nothing else runs while a spec loads.
      bytes = readFileSync(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      diagnostics.push({
        file: at.file,
        range: at.range,
        severity: 'error',
        code: 'spec/dockerfile-unreadable',
        message: `image ${image.name}: cannot read Dockerfile ${shown} (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code ?? 'error'})`,
        hint: code === 'EACCES' ? 'check the file permissions' : 'set `dockerfile:` (relative to the context) to an existing file',
      });
      continue;
    }
    if (bytes.length > MAX_DOCKERFILE_BYTES || bytes.subarray(0, 8192).includes(0)) {
      diagnostics.push({
        // No range: a code frame of binary bytes helps nobody.
        file: shown,
        severity: 'error',
        code: 'dockerfile/not-text',
        message: bytes.length > MAX_DOCKERFILE_BYTES ? `the Dockerfile is larger than ${MAX_DOCKERFILE_BYTES} bytes` : 'the Dockerfile is not a text file (it contains NUL bytes)',
        hint: `check that image ${image.name}'s dockerfile: points at a Dockerfile`,
      });
      continue;
    }
    const text = bytes.toString('utf8');
    let parsed = parsedByText.get(text);
    if (!parsed) {
      const raw = parseRaw(text);
      parsed = { file: shown, result: parseDockerfileFromRaw(raw, { file: shown }), raw };
      parsedByText.set(text, parsed);
      diagnostics.push(...parsed.result.diagnostics);
    } else {
      diagnostics.push(...parsed.result.diagnostics.map((d) => (d.file === parsed!.file ? { ...d, file: shown } : d)));
    }
    dockerfiles.set(path, { text, ...(options.keepRaw ? { raw: parsed.raw } : {}), ...(parsed.result.dockerfile ? { dockerfile: parsed.result.dockerfile } : {}) });
  }
  return { spec, dockerfiles, diagnostics };
}
