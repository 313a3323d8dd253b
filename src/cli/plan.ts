/**
 * `stowage plan`: print the compiled build graph. Pure past loading: no network, no credentials,
 * and the same input gives byte-identical output (golden-tested) — unless `--resolve` asks it to
 * look external base images up in their registries, so steps built on them can show hit or miss.
 */
import { resolve } from 'node:path';
import { compileGraph, type ParsedDockerfile } from '../graph/compile.js';
import type { PlanCacheStatus } from '../cache/plan-graph.js';
import { ttlOption } from '../cache/entry.js';
import type { BuildGraph } from '../graph/types.js';
import { formatPlatform, hostPlatform } from '../image/platform.js';
import { selectImages } from '../spec/select.js';
import type { BuildSpec } from '../spec/types.js';
import type { Diagnostic } from '../util/errors.js';
import type { TlsTrust } from '../registry/tls-trust.js';
import { oneOf, parseCommandArgs, parseKeyValues } from './args.js';
import { renderHuman } from './diagnostics-output.js';
import { displayPath, loadProject } from './project.js';
import { readFileSync } from 'node:fs';

const FORMATS = ['text', 'json', 'dot'] as const;

export const PLAN_USAGE = `Usage: stowage plan [options] [IMAGE|GROUP|GLOB ...]

Compiles the spec and its Dockerfiles into the build graph and prints it. With names, the graph
is limited to those images (names, groups or globs like 'svc-*') and what they depend on.

Options:
  -f, --file PATH        the spec (default ./stowage.yaml)
      --var K=V          override a spec variable (repeatable; also STOWAGE_VAR_K)
      --format FORMAT    text (default), json or dot
      --platform P       the platform images without 'platforms:' build for (default: this machine's)
      --cache-dir DIR    the local step cache to check steps against (default as for build)
      --cache-ttl D      entries older than this count as misses, e.g. 168h, 7d (spec cache.ttl)
      --no-cache-status  do not look at the context or the local cache (steps show no hit/miss)
      --resolve          look external base images (FROM registry/image:tag) up in their registries
                         (network, docker credentials, HTTPS_PROXY) so the steps on them show
                         [cached] or [run] as a build now would, and ask the spec's cache.repo for
                         steps the local cache lacks; without it they show [?]
      --insecure-registry H  plain-HTTP registry for --resolve (repeatable; localhost is already)
  -h, --help             this help
`;

export interface PlanOptions {
  file: string;
  vars: Record<string, string>;
  env: Record<string, string | undefined>;
  cwd: string;
  selection: string[];
  hostPlatform?: string;
}

export interface PlanResult {
  graph?: BuildGraph;
  /** Present whenever the spec loaded (the build needs its images' details). */
  spec?: BuildSpec;
  /** The parsed Dockerfiles (by absolute path), for step cache keys. */
  dockerfiles?: ReadonlyMap<string, ParsedDockerfile>;
  diagnostics: Diagnostic[];
}

export async function computePlan(options: PlanOptions): Promise<PlanResult> {
  const project = await loadProject(options);
  const errors = (ds: readonly Diagnostic[]) => ds.some((d) => d.severity === 'error');
  if (!project.spec || errors(project.diagnostics)) return { diagnostics: project.diagnostics };
  const selected = selectImages(project.spec, options.selection);
  if (errors(selected.diagnostics)) return { diagnostics: selected.diagnostics };
  const compiled = compileGraph({
    spec: project.spec,
    dockerfiles: project.dockerfiles,
    selection: selected.images,
    hostPlatform: options.hostPlatform ?? formatPlatform(hostPlatform()),
    displayPath: (p) => displayPath(options.cwd, p),
  });
  const diagnostics = [...project.diagnostics, ...selected.diagnostics, ...compiled.diagnostics];
  return errors(diagnostics) ? { diagnostics } : { graph: compiled.graph, spec: project.spec, dockerfiles: project.dockerfiles, diagnostics };
}

export function renderPlanText(graph: BuildGraph, cache?: PlanCacheStatus): string {
  const lines: string[] = [];
  const shortId = (id: string) => id.slice(0, 12);
  const byId = new Map(graph.vertices.map((v) => [v.id, v]));
  lines.push(`${graph.images.length} image(s), ${graph.vertices.length} stage build(s)`);
  for (const img of graph.images) {
    lines.push('');
    lines.push(`image ${img.name}  [${img.platform}]${img.dependsOn.length ? `  after: ${img.dependsOn.join(', ')}` : ''}`);
    for (const d of img.destinations) lines.push(`  -> ${d}${img.push ? '' : ' (push: false)'}`);
    for (const id of img.stages) {
      const v = byId.get(id)!;
      const shared = v.usedBy.length > 1 ? `  (shared with ${v.usedBy.filter((u) => u !== img.name).join(', ')})` : '';
      const base =
        v.base.kind === 'scratch' ? 'scratch' : v.base.kind === 'image' ? v.base.ref : v.base.image ? `image ${v.base.image}` : `stage ${shortId(v.base.vertex)}`;
      lines.push(`  stage ${v.stage.name ?? v.stage.index} ${shortId(v.id)} from ${base}${shared}`);
      const status = new Map((cache?.get(v.id) ?? []).map((c) => [c.line, c.status]));
      for (const s of v.steps.slice(1)) {
        const mark = cache ? `${CACHE_MARK[status.get(s.line) ?? 'unknown']} ` : '';
        lines.push(`    ${String(s.line).padStart(3)}: ${mark}${s.text.length > 100 ? `${s.text.slice(0, 97)}...` : s.text}`);
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Fixed width so the instructions stay aligned. */
const CACHE_MARK = { hit: '[cached]', miss: '[run]   ', unknown: '[?]     ' } as const;

/** The graph with each step's cache status and key (JSON output); `steps[0]` (FROM) has none. */
export function graphWithCache(graph: BuildGraph, cache: PlanCacheStatus): unknown {
  return {
    ...graph,
    vertices: graph.vertices.map((v) => {
      const byLine = new Map((cache.get(v.id) ?? []).map((c) => [c.line, c]));
      return {
        ...v,
        steps: v.steps.map((s, i) => {
          const c = i === 0 ? undefined : byLine.get(s.line);
          return c ? { ...s, cache: { status: c.status, ...(c.key !== undefined ? { key: c.key } : {}) } } : s;
        }),
      };
    }),
  };
}

/**
 * Reads the context and the local step index: what each step would do now. With `resolve`, external
 * base images are looked up in their registries (their digest and config key the steps on them).
 */
async function cacheStatusFor(
  result: PlanResult,
  flags: { cacheDirFlag: string | undefined; ttlMs?: number },
  env: Record<string, string | undefined>,
  resolve: { insecureRegistries: string[]; tls?: TlsTrust } | undefined,
): Promise<PlanCacheStatus | undefined> {
  if (!result.graph || !result.spec || !result.dockerfiles) return undefined;
  const [{ planCacheStatus }, { resolveCacheDir }, { openDirContext }, { StepCache }, { FsBlobStore }] = await Promise.all([
    import('../cache/plan-graph.js'),
    import('../store/cache-dir.js'),
    import('../engine/context/context.js'),
    import('../cache/step-cache.js'),
    import('../store/blob-store.js'),
  ]);
  const cacheDir = resolveCacheDir({ flag: flags.cacheDirFlag, env });
  const { ttlMs } = flags;
  const epoch = env['SOURCE_DATE_EPOCH'] !== undefined ? Number(env['SOURCE_DATE_EPOCH']) : undefined;
  const signal = new AbortController().signal;
  // Its own bundle (scripts/bundle.mjs): the registry client is loaded only by --resolve.
  const bases = resolve ? await (await import('./plan-resolve.js')).registryBases(cacheDir, env, resolve, { repo: result.spec.cache?.repo, ...(ttlMs !== undefined ? { ttlMs } : {}) }) : undefined;
  // The build's own local lookup, quiet and changing nothing: a readable entry within the TTL whose
  // layer blob is in the store. `new FsBlobStore` (not `open`) creates and cleans nothing.
  const local = new StepCache({ cacheDir, store: new FsBlobStore(cacheDir), ...(ttlMs !== undefined ? { ttlMs } : {}), warn: () => undefined });
  try {
    return await planCacheStatus(result.graph, result.spec, result.dockerfiles, {
      openContext: (dir, dockerfilePath) => openDirContext({ dir, dockerfilePath, cacheDir, signal }),
      peek: async (key) => (await local.peekLocal(key)) || ((await bases?.inCacheRepo(key, signal)) ?? false),
      ...(bases ? { resolveImage: bases.resolve } : {}),
      ...(epoch !== undefined && Number.isInteger(epoch) ? { sourceDateEpoch: epoch } : {}),
      signal,
    });
  } finally {
    await bases?.close();
  }
}

function dotId(s: string): string {
  return JSON.stringify(s);
}

export function renderPlanDot(graph: BuildGraph): string {
  const lines = ['digraph stowage {', '  rankdir=LR;', '  node [shape=box, fontname="monospace"];'];
  for (const v of graph.vertices) {
    const label = `${v.dockerfile}\\nstage ${v.stage.name ?? v.stage.index}\\n${v.id.slice(0, 12)}`;
    lines.push(`  ${dotId(`v:${v.id}`)} [label=${JSON.stringify(label).replace(/\\\\n/g, '\\n')}];`);
    for (const d of v.dependsOn) lines.push(`  ${dotId(`v:${d}`)} -> ${dotId(`v:${v.id}`)};`);
    if (v.base.kind === 'image') {
      lines.push(`  ${dotId(`i:${v.base.ref}`)} [shape=ellipse, label=${JSON.stringify(v.base.ref)}];`);
      lines.push(`  ${dotId(`i:${v.base.ref}`)} -> ${dotId(`v:${v.id}`)};`);
    }
  }
  for (const img of graph.images) {
    lines.push(`  ${dotId(`img:${img.name}`)} [shape=component, label=${JSON.stringify(img.name)}];`);
    lines.push(`  ${dotId(`v:${img.target}`)} -> ${dotId(`img:${img.name}`)};`);
  }
  lines.push('}');
  return `${[...new Set(lines)].join('\n')}\n`;
}

export async function runPlan(argv: string[], context: { tls?: TlsTrust } = {}): Promise<number> {
  const { values, positionals } = parseCommandArgs('plan', argv, {
    file: { type: 'string', short: 'f' },
    var: { type: 'string', multiple: true },
    format: { type: 'string' },
    platform: { type: 'string' },
    'cache-dir': { type: 'string' },
    'cache-ttl': { type: 'string' },
    'no-cache-status': { type: 'boolean' },
    resolve: { type: 'boolean' },
    'insecure-registry': { type: 'string', multiple: true },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(PLAN_USAGE);
    return 0;
  }
  const format = oneOf('--format', values.format as string | undefined, FORMATS, 'text');
  const ttlFlag = ttlOption(values['cache-ttl'] as string | undefined);
  const cwd = process.cwd();
  const result = await computePlan({
    file: resolve(cwd, (values.file as string | undefined) ?? 'stowage.yaml'),
    vars: parseKeyValues('--var', values.var as string[] | undefined),
    env: process.env,
    cwd,
    selection: positionals,
    ...(values.platform ? { hostPlatform: values.platform as string } : {}),
  });
  const problems = result.diagnostics.filter((d) => d.severity === 'error');
  if (!result.graph) {
    const readSource = (f: string) => {
      try {
        return readFileSync(resolve(cwd, f), 'utf8');
      } catch {
        return undefined;
      }
    };
    process.stderr.write(renderHuman(problems, { color: Boolean(process.stderr.isTTY) && !process.env.NO_COLOR, readSource }));
    process.stderr.write(`stowage plan: ${problems.length} error(s); run 'stowage lint' for details\n`);
    return 1;
  }
  let cache: PlanCacheStatus | undefined;
  if (format !== 'dot' && !values['no-cache-status']) {
    try {
      const resolveBases = values.resolve ? { insecureRegistries: (values['insecure-registry'] as string[] | undefined) ?? [], ...(context.tls ? { tls: context.tls } : {}) } : undefined;
      const ttlMs = ttlFlag ?? ttlOption(result.spec?.cache?.ttl, "the spec's cache.ttl");
      cache = await cacheStatusFor(result, { cacheDirFlag: values['cache-dir'] as string | undefined, ...(ttlMs !== undefined ? { ttlMs } : {}) }, process.env, resolveBases);
    } catch (e) {
      // The graph is still right; only the hit/miss column is missing.
      process.stderr.write(`stowage plan: warning: cannot tell which steps are cached (${e instanceof Error ? e.message : String(e)})\n`);
    }
  }
  switch (format) {
    case 'text':
      process.stdout.write(renderPlanText(result.graph, cache));
      break;
    case 'json':
      process.stdout.write(`${JSON.stringify(cache ? graphWithCache(result.graph, cache) : result.graph, null, 2)}\n`);
      break;
    case 'dot':
      process.stdout.write(renderPlanDot(result.graph));
      break;
  }
  return 0;
}


