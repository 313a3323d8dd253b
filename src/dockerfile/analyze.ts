/**
 * Pure stage analysis (DOCKERFILE.md A7, A9, A20): which stage is the target, which stages it
 * needs (FROM <stage>, COPY --from, RUN --mount from=, ONBUILD triggers of base stages), in what
 * order, what each stage is based on (FROM expanded with the global args), and which build args
 * nothing consumed. Used by `stowage plan`, `stowage lint` and the builder.
 */
import { parsePlatform as parseImagePlatform } from '../image/platform.js';
import type { Diagnostic } from '../util/errors.js';
import { StowageError } from '../util/errors.js';
import { suggest as didYouMean } from './suggest.js';
import { expandWord } from './shell-lex.js';
import { PROXY_ARGS, predefinedArgs, resolveGlobalArgs, type PlatformSpec } from './stage-env.js';
import type { Dockerfile, Instruction, Stage } from './types.js';

export type StageBase = { kind: 'scratch' } | { kind: 'stage'; index: number } | { kind: 'image'; ref: string };

export interface AnalyzedStage {
  index: number;
  name?: string;
  base: StageBase;
  /** The stage's `--platform`, expanded; absent when the flag is not given (use the target platform). */
  platform?: PlatformSpec;
  /** Stages this one needs, ascending. */
  dependsOn: number[];
  /** Images named by `COPY --from=<image>` / `RUN --mount from=<image>`. */
  externalImages: string[];
}

export interface AnalyzeOptions {
  target?: string;
  buildArgs: Record<string, string>;
  platform: PlatformSpec;
  buildPlatform?: PlatformSpec;
}

export interface Analysis {
  /** Index of the target stage (-1 when the analysis failed). */
  target: number;
  /** Stages reachable from the target, dependencies first. */
  stages: AnalyzedStage[];
  declaredArgs: Set<string>;
  unusedBuildArgs: string[];
  diagnostics: Diagnostic[];
}

const BUILTIN_ARGS = new Set([
  'BUILDKIT_CACHE_MOUNT_NS',
  'BUILDKIT_CONTEXT_KEEP_GIT_DIR',
  'BUILDKIT_INLINE_CACHE',
  'BUILDKIT_MULTI_PLATFORM',
  'BUILDKIT_SANDBOX_HOSTNAME',
  'BUILDKIT_SYNTAX',
  'BUILDKIT_DOCKERFILE_CHECK',
  'SOURCE_DATE_EPOCH',
]);

/** `os/arch[/variant]` → PlatformSpec; undefined when malformed. */
/**
 * FROM --platform's value, normalised as everywhere else in stowage (image/platform.ts, containerd's
 * rules: x86_64 is amd64, arm64/v8 is arm64), so a stage's platform compares equal to the spec's.
 */
export function parsePlatform(s: string): PlatformSpec | undefined {
  let p;
  try {
    p = parseImagePlatform(s);
  } catch {
    return undefined;
  }
  return p.variant !== undefined ? { os: p.os, architecture: p.architecture, variant: p.variant } : { os: p.os, architecture: p.architecture };
}

function isNumeric(s: string): boolean {
  return /^\d+$/.test(s);
}

export function analyzeDockerfile(df: Dockerfile, options: AnalyzeOptions): Analysis {
  const diagnostics: Diagnostic[] = [];
  const declaredArgs = new Set<string>();
  const fail = (): Analysis => ({ target: -1, stages: [], declaredArgs, unusedBuildArgs: [], diagnostics });
  const escape = df.directives.escape;

  for (const a of df.metaArgs) for (const kv of a.args) declaredArgs.add(kv.key);
  const visitArgs = (i: Instruction) => {
    if (i.kind === 'arg') for (const kv of i.args) declaredArgs.add(kv.key);
    if (i.kind === 'onbuild') visitArgs(i.trigger);
  };
  for (const s of df.stages) for (const i of s.instructions) visitArgs(i);

  // Target first: TARGETSTAGE is a predefined arg.
  let target = df.stages.length - 1;
  if (options.target !== undefined && options.target !== '') {
    const want = options.target.toLowerCase();
    const found = df.stages.find((s) => s.name === want);
    if (found === undefined) {
      const names = df.stages.flatMap((s) => (s.name ? [s.name] : []));
      const s = didYouMean(want, names);
      diagnostics.push({
        severity: 'error',
        code: 'dockerfile/unknown-target',
        message: `target stage "${options.target}" could not be found`,
        hint: s ? `did you mean "${s}"?` : names.length > 0 ? `stages: ${names.join(', ')}` : 'the Dockerfile names no stages (use FROM … AS name)',
      });
      return fail();
    }
    target = found.index;
  }
  if (target < 0) {
    diagnostics.push({ severity: 'error', code: 'dockerfile/no-stage', message: 'the Dockerfile has no stages' });
    return fail();
  }
  const targetName = df.stages[target]?.name ?? 'default';

  let globals: Map<string, string | undefined>;
  try {
    globals = resolveGlobalArgs(df.metaArgs, options.buildArgs, options.platform, {
      escape,
      targetStage: targetName,
      ...(options.buildPlatform ? { buildPlatform: options.buildPlatform } : {}),
    });
  } catch (e) {
    const first = df.metaArgs[0];
    diagnostics.push({
      severity: 'error',
      code: e instanceof StowageError ? e.code : 'dockerfile/bad-substitution',
      message: e instanceof Error ? e.message : String(e),
      ...(first ? { range: first.range } : {}),
    });
    return fail();
  }
  const globalLookup = (n: string) => globals.get(n);

  const byName = new Map<string, number>();
  const analyzed: AnalyzedStage[] = [];
  const onbuildOf = (s: Stage) => s.instructions.flatMap((i) => (i.kind === 'onbuild' ? [i.trigger] : []));

  for (const stage of df.stages) {
    const from = stage.from;
    let image: string;
    try {
      image = expandWord(from.image, globalLookup, { escape });
    } catch (e) {
      diagnostics.push({ severity: 'error', code: 'dockerfile/bad-substitution', message: errMsg(e), range: from.range });
      continue;
    }
    if (image === '') {
      diagnostics.push({
        severity: 'error',
        code: 'dockerfile/blank-base',
        message: `base name (${from.image}) should not be blank`,
        range: from.range,
        hint: 'give the ARG used in FROM a default or pass it with --build-arg',
      });
      continue;
    }
    let base: StageBase;
    const lower = image.toLowerCase();
    const stageRef = byName.get(lower);
    if (stageRef !== undefined) base = { kind: 'stage', index: stageRef };
    else if (lower === 'scratch') base = { kind: 'scratch' };
    else base = { kind: 'image', ref: image };

    const a: AnalyzedStage = { index: stage.index, base, dependsOn: [], externalImages: [] };
    if (stage.name !== undefined) a.name = stage.name;
    if (from.platform !== undefined) {
      let p: string;
      try {
        p = expandWord(from.platform, globalLookup, { escape });
      } catch (e) {
        diagnostics.push({ severity: 'error', code: 'dockerfile/bad-substitution', message: errMsg(e), range: from.range });
        continue;
      }
      if (p === '') {
        diagnostics.push({ severity: 'error', code: 'dockerfile/bad-platform', message: 'empty platform value', range: from.range });
        continue;
      }
      const parsed = parsePlatform(p);
      if (parsed === undefined) {
        diagnostics.push({
          severity: 'error',
          code: 'dockerfile/bad-platform',
          message: `failed to parse platform ${p}`,
          range: from.range,
          hint: 'use os/arch[/variant], e.g. linux/arm64',
        });
        continue;
      }
      a.platform = parsed;
    }

    const deps = new Set<number>();
    if (base.kind === 'stage') deps.add(base.index);
    const addRef = (ref: string, instr: Instruction, what: 'copy' | 'mount') => {
      if (ref.includes('$')) {
        diagnostics.push({
          severity: 'error',
          code: 'dockerfile/from-expansion',
          message:
            what === 'copy'
              ? 'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround'
              : "'from' doesn't support variable expansion, define alias stage instead",
          range: instr.range,
        });
        return;
      }
      const r = ref.toLowerCase();
      if (isNumeric(r)) {
        const idx = Number(r);
        if (idx >= df.stages.length) {
          diagnostics.push({ severity: 'error', code: 'dockerfile/bad-stage-index', message: `invalid stage index ${ref}`, range: instr.range });
          return;
        }
        if (idx >= stage.index) {
          diagnostics.push({
            severity: 'error',
            code: 'dockerfile/forward-stage',
            message: `cannot copy from stage "${ref}", it needs to be defined before current stage "${stage.name ?? stage.index}"`,
            range: instr.range,
          });
          return;
        }
        deps.add(idx);
        return;
      }
      const named = byName.get(r);
      if (named !== undefined) {
        deps.add(named);
        return;
      }
      const later = df.stages.find((s) => s.name === r);
      if (later !== undefined) {
        diagnostics.push({
          severity: 'error',
          code: later.index === stage.index ? 'dockerfile/circular-dependency' : 'dockerfile/forward-stage',
          message:
            later.index === stage.index
              ? 'circular dependency detected'
              : `cannot copy from stage "${ref}", it needs to be defined before current stage "${stage.name ?? stage.index}"`,
          range: instr.range,
        });
        return;
      }
      if (!a.externalImages.includes(ref)) a.externalImages.push(ref);
    };
    const scan = (i: Instruction) => {
      if (i.kind === 'copy' && i.from !== undefined) addRef(i.from, i, 'copy');
      if (i.kind === 'run') for (const m of i.mounts) if (m.from !== undefined && m.from !== '') addRef(m.from, i, 'mount');
    };
    // ONBUILD triggers of a base stage run in this stage (resolved in this Dockerfile, A20).
    if (base.kind === 'stage') {
      const parent = df.stages[base.index];
      if (parent !== undefined) for (const t of onbuildOf(parent)) scan(t);
    }
    for (const i of stage.instructions) scan(i);
    a.dependsOn = [...deps].sort((x, y) => x - y);
    analyzed[stage.index] = a;
    if (stage.name !== undefined && !byName.has(stage.name)) byName.set(stage.name, stage.index);
  }
  if (diagnostics.some((d) => d.severity === 'error')) return fail();

  // Reachable from the target, dependencies first; cycles rejected.
  const order: AnalyzedStage[] = [];
  const state = new Map<number, 'visiting' | 'done'>();
  const visit = (i: number): boolean => {
    const st = state.get(i);
    if (st === 'done') return true;
    if (st === 'visiting') {
      diagnostics.push({ severity: 'error', code: 'dockerfile/circular-dependency', message: 'circular dependency detected', range: df.stages[i]!.from.range });
      return false;
    }
    state.set(i, 'visiting');
    const a = analyzed[i]!;
    for (const d of a.dependsOn) if (!visit(d)) return false;
    state.set(i, 'done');
    order.push(a);
    return true;
  };
  if (!visit(target)) return fail();

  const predefined = predefinedArgs(options.platform);
  const consumed = (k: string) => declaredArgs.has(k) || BUILTIN_ARGS.has(k) || PROXY_ARGS.includes(k) || predefined.has(k);
  const unusedBuildArgs = Object.keys(options.buildArgs)
    .filter((k) => !consumed(k))
    .sort();
  if (unusedBuildArgs.length > 0) {
    diagnostics.push({
      severity: 'warning',
      code: 'dockerfile/unused-build-arg',
      message: `One or more build-args [${unusedBuildArgs.join(' ')}] were not consumed`,
      hint: 'declare them with ARG in the stages that use them, or drop the --build-arg',
    });
  }
  return { target, stages: order, declaredArgs, unusedBuildArgs, diagnostics };
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
