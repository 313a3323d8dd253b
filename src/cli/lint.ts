/**
 * `stowage lint`: the spec, every Dockerfile it names, and what only the two together can tell
 * (a target that is not a stage, args nothing declares, images that depend on each other in a
 * cycle). Never touches the network. Exit 0 clean, 1 errors (or warnings with --strict), 2 usage.
 */
import { readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runBuildChecks } from '../dockerfile/checks.js';
import type { Dockerfile } from '../dockerfile/types.js';
import { graphDiagnostics } from '../graph/compile.js';
import { formatPlatform, hostPlatform } from '../image/platform.js';
import type { SpecImage } from '../spec/types.js';
import type { Diagnostic } from '../util/errors.js';
import { didYouMean } from '../util/levenshtein.js';
import { oneOf, parseCommandArgs, parseKeyValues } from './args.js';
import { renderGithub, renderHuman, renderJson, renderSarif } from './diagnostics-output.js';
import { displayPath, loadProject } from './project.js';
import { packageVersion } from './version.js';

const FORMATS = ['human', 'json', 'sarif', 'github'] as const;

export const LINT_USAGE = `Usage: stowage lint [options]

Checks the build spec and every Dockerfile it names. Needs no network or credentials.

Options:
  -f, --file PATH        the spec (default ./stowage.yaml)
      --var K=V          override a spec variable (repeatable; also STOWAGE_VAR_K)
      --format FORMAT    human (default), json, sarif or github
      --strict           warnings fail the run too
  -h, --help             this help
`;

export interface DockerignoreInfo {
  patterns: string[];
  diagnostics: Diagnostic[];
}

/** What reading one candidate ignore file gave: its text, nothing there, or an error code. */
type IgnoreRead = { text: string } | { missing: true } | { error: string };

function readIgnoreCandidate(path: string): IgnoreRead {
  try {
    // No exception for the usual case (no such file): stat says so cheaply, and most images have none.
    if (statSync(path, { throwIfNoEntry: false }) === undefined) return { missing: true };
    return { text: readFileSync(path, 'utf8') };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' || code === 'ENOTDIR' ? { missing: true } : { error: code ?? 'error' };
  }
}

/**
 * BuildKit's rule (A11): `<Dockerfile>.dockerignore` wins over `<context>/.dockerignore`.
 * `reads` remembers each candidate file across images (many share a context or a Dockerfile).
 */
export function dockerignoreFor(image: SpecImage, cwd: string, reads: Map<string, IgnoreRead> = new Map()): DockerignoreInfo {
  for (const candidate of [`${image.dockerfile}.dockerignore`, join(image.context, '.dockerignore')]) {
    let read = reads.get(candidate);
    if (!read) {
      read = readIgnoreCandidate(candidate);
      reads.set(candidate, read);
    }
    if ('missing' in read) continue;
    if ('text' in read) {
      const patterns = read.text
        .replace(/^\uFEFF/, '')
        .split(/\r?\n/)
        .filter((l) => !l.startsWith('#'))
        .map((l) => l.trim())
        .filter((l) => l !== '');
      return { patterns, diagnostics: [] };
    }
    const at = image.source.fields['context'] ?? image.source.image;
    return {
      patterns: [],
      diagnostics: [
        {
          file: at.file,
          range: at.range,
          severity: 'error',
          code: 'context/dockerignore-unreadable',
          message: `image ${image.name}: cannot read ${displayPath(cwd, candidate)} (${read.error})`,
          hint: 'make the file readable or remove it; without it, files meant to be ignored would be sent to the build',
        },
      ],
    };
  }
  return { patterns: [], diagnostics: [] };
}

/** {@link dockerignoreFor} for one image. */
export async function readDockerignoreFor(image: SpecImage, cwd: string): Promise<DockerignoreInfo> {
  return dockerignoreFor(image, cwd);
}

/** `COPY --from=name` where `name` is no stage and does not look like an image: most likely a typo. */
export function unknownStageReferences(df: Dockerfile, file: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  const names: string[] = [];
  for (const stage of df.stages) {
    for (const instr of stage.instructions) {
      if (instr.kind !== 'copy' || instr.from === undefined) continue;
      const from = instr.from.toLowerCase();
      if (/^\d+$/.test(from) || names.includes(from) || /[/:.@]/.test(from)) continue;
      const guess = didYouMean(from, names);
      out.push({
        file,
        range: instr.range,
        severity: 'warning',
        code: 'dockerfile/unknown-stage',
        message: `COPY --from=${instr.from}: no earlier stage is named ${JSON.stringify(from)}, so it will be pulled as the image docker.io/library/${from}:latest`,
        hint: guess ? `did you mean --from=${guess}?` : 'name a stage defined above (FROM … AS name), or write the full image reference',
      });
    }
    if (stage.name) names.push(stage.name);
  }
  return out;
}

export async function collectLintDiagnostics(options: {
  file: string;
  vars: Record<string, string>;
  env: Record<string, string | undefined>;
  cwd: string;
}): Promise<Diagnostic[]> {
  const project = await loadProject({ ...options, keepRaw: true });
  const diagnostics = [...project.diagnostics];
  const { spec } = project;
  if (!spec) return diagnostics;

  // Build checks once per (Dockerfile, .dockerignore) pair: images often share a Dockerfile. Equal
  // Dockerfile text with equal ignore patterns gives the same findings, only about another file.
  const checked = new Set<string>();
  const findingsByContent = new Map<string, { file: string; diagnostics: Diagnostic[] }>();
  const ignoreReads = new Map<string, IgnoreRead>();
  for (const image of spec.images) {
    const parsed = project.dockerfiles.get(image.dockerfile);
    if (!parsed?.dockerfile) continue;
    const ignore = dockerignoreFor(image, options.cwd, ignoreReads);
    diagnostics.push(...ignore.diagnostics);
    const patterns = ignore.patterns.join('\n');
    const key = `${image.dockerfile}\0${patterns}`;
    if (checked.has(key)) continue;
    checked.add(key);
    const shown = displayPath(options.cwd, image.dockerfile);
    const contentKey = `${patterns}\0${parsed.text}`;
    const same = findingsByContent.get(contentKey);
    if (same) {
      diagnostics.push(...same.diagnostics.map((d) => (d.file === same.file ? { ...d, file: shown } : d)));
      continue;
    }
    const found = [
      ...runBuildChecks({ text: parsed.text, dockerfile: parsed.dockerfile, ...(parsed.raw ? { raw: parsed.raw } : {}) }, { file: shown, dockerignore: ignore.patterns }),
      ...unknownStageReferences(parsed.dockerfile, shown),
    ];
    findingsByContent.set(contentKey, { file: shown, diagnostics: found });
    diagnostics.push(...found);
  }
  const fromGraph = graphDiagnostics({
    spec,
    dockerfiles: project.dockerfiles,
    selection: [],
    hostPlatform: formatPlatform(hostPlatform()),
    displayPath: (p) => displayPath(options.cwd, p),
  });
  diagnostics.push(...fromGraph);
  return dedupeAndSort(diagnostics);
}

export function dedupeAndSort(diags: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  const out: Diagnostic[] = [];
  for (const d of diags) {
    const key = JSON.stringify([d.file, d.range?.start.line, d.range?.start.column, d.code, d.message]);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(d);
  }
  return out.sort(
    (a, b) =>
      (a.file ?? '').localeCompare(b.file ?? '') ||
      (a.range?.start.line ?? 0) - (b.range?.start.line ?? 0) ||
      (a.range?.start.column ?? 0) - (b.range?.start.column ?? 0) ||
      a.code.localeCompare(b.code),
  );
}

export async function runLint(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('lint', argv, {
    file: { type: 'string', short: 'f' },
    var: { type: 'string', multiple: true },
    format: { type: 'string' },
    strict: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(LINT_USAGE);
    return 0;
  }
  const format = oneOf('--format', values.format as string | undefined, FORMATS, 'human');
  const cwd = process.cwd();
  const diagnostics = await collectLintDiagnostics({
    file: resolve(cwd, (values.file as string | undefined) ?? 'stowage.yaml'),
    vars: parseKeyValues('--var', values.var as string[] | undefined),
    env: process.env,
    cwd,
  });
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.filter((d) => d.severity === 'warning').length;
  switch (format) {
    case 'human': {
      const readSource = (file: string): string | undefined => {
        try {
          return readFileSync(resolve(cwd, file), 'utf8');
        } catch {
          return undefined;
        }
      };
      const color = Boolean(process.stderr.isTTY) && !process.env.NO_COLOR;
      const text = renderHuman(diagnostics, { color, readSource });
      process.stderr.write(text || 'stowage lint: no problems found\n');
      break;
    }
    case 'json':
      process.stdout.write(`${renderJson(diagnostics)}\n`);
      break;
    case 'sarif':
      process.stdout.write(`${renderSarif(diagnostics, { toolVersion: packageVersion() })}\n`);
      break;
    case 'github': {
      const text = renderGithub(diagnostics);
      if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
      break;
    }
  }
  return errors > 0 || (values.strict && warnings > 0) ? 1 : 0;
}


