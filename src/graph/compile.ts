/**
 * spec + parsed Dockerfiles → BuildGraph. Pure: no I/O, same input → byte-identical output.
 *
 * One vertex per (image, stage) the target needs; identical stages of different images (same
 * Dockerfile content, stage, visible args, context and base) collapse into one vertex. An image
 * whose FROM or COPY --from names another image of the spec — by one of its registry destinations,
 * its `oci:`/`docker-archive:` output, or explicitly as `image:<name>` — depends on that image and will use the built result directly.
 */
import { sha256Digest } from '../image/digest.js';
import { analyzeDockerfile, parsePlatform as parseStagePlatform } from '../dockerfile/analyze.js';
import type { RawParseResult } from '../dockerfile/ast.js';
import type { Dockerfile, Instruction, Stage } from '../dockerfile/types.js';
import { parseReference, formatReference } from '../registry/reference.js';
import { destinationKey, parseDestination } from '../spec/destination.js';
import type { BuildSpec, SpecImage } from '../spec/types.js';
import type { Diagnostic } from '../util/errors.js';
import { didYouMean } from '../util/levenshtein.js';
import type { BaseRef, BuildGraph, GraphImage, StageVertex } from './types.js';

export const GRAPH_VERSION = 1;

export interface ParsedDockerfile {
  text: string;
  /** Absent when the file could not be read or parsed; lint reports why. */
  dockerfile?: Dockerfile;
  /** `parseRaw(text)`, kept so the build checks need not split the text again. */
  raw?: RawParseResult;
}

export interface CompileInput {
  spec: BuildSpec;
  /** Keyed by absolute Dockerfile path. */
  dockerfiles: ReadonlyMap<string, ParsedDockerfile>;
  /** Image names to build; their image dependencies are added. Empty = all. */
  selection: readonly string[];
  /** `os/arch[/variant]` of the build machine, used when an image lists no platform. */
  hostPlatform: string;
  /** How an absolute path is shown to the user (e.g. relative to the working directory). */
  displayPath?: (absolute: string) => string;
}

export interface CompileResult {
  graph: BuildGraph;
  diagnostics: Diagnostic[];
}

/** The prefix that names an image of this spec explicitly in FROM / COPY --from. */
export const IMAGE_REF_PREFIX = 'image:';

function relPath(from: string, to: string): string {
  if (to === from) return '.';
  if (to.startsWith(from + '/')) return to.slice(from.length + 1);
  // Outside the spec's tree: keep it relative with ../ segments, computed purely.
  const a = from.split('/').filter(Boolean);
  const b = to.split('/').filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => '..'), ...b.slice(i)].join('/') || '.';
}

function normalizeRef(ref: string): string | undefined {
  try {
    return formatReference(parseReference(ref));
  } catch {
    return undefined;
  }
}

function argKeysOf(instructions: readonly Instruction[]): Set<string> {
  const keys = new Set<string>();
  for (const i of instructions) if (i.kind === 'arg') for (const a of i.args) keys.add(a.key);
  return keys;
}

function stepsOf(stage: Stage): StageVertex['steps'] {
  return [stage.from, ...stage.instructions].map((i) => ({
    line: i.range.start.line,
    instruction: i.keyword.toUpperCase(),
    text: i.original,
  }));
}

interface ImagePlan {
  image: SpecImage;
  platform: string;
  /** Stage index → what the stage is based on, before image refs are resolved to vertices. */
  stages: { stage: Stage; base: BaseRef | { kind: 'spec-image'; name: string }; dependsOn: number[]; external: string[]; imageDeps: string[] }[];
  imageDeps: Set<string>;
}

/**
 * (ref as written in FROM / COPY --from, the image that refers to it) → the spec image it names, if
 * any: `image:<name>`, one of the image's registry destinations (normalised), or its `oci:` /
 * `docker-archive:` output written as the spec writes it (relative to the spec's directory).
 */
export function specImageResolver(spec: BuildSpec, normalize: (ref: string) => string | undefined = normalizeRef): (ref: string, self?: string) => string | undefined {
  const byName = new Set(spec.images.map((i) => i.name));
  const destinationOwner = new Map<string, string>();
  for (const img of spec.images) {
    for (const d of img.destinations) destinationOwner.set(d.kind === 'registry' ? d.ref : destinationKey(d), img.name);
  }
  // Hundreds of images usually name a handful of bases: look each reference up once.
  const ownerOf = new Map<string, string | undefined>();
  const lookup = (ref: string): string | undefined => {
    if (ref.startsWith(IMAGE_REF_PREFIX) && byName.has(ref.slice(IMAGE_REF_PREFIX.length))) return ref.slice(IMAGE_REF_PREFIX.length);
    if (ref.startsWith('oci:') || ref.startsWith('docker-archive:')) {
      const parsed = parseDestination(ref, spec.dir);
      return parsed.ok ? destinationOwner.get(destinationKey(parsed.value)) : undefined;
    }
    const norm = normalize(ref);
    return norm ? destinationOwner.get(norm) : undefined;
  };
  return (ref, self) => {
    let owner: string | undefined;
    if (ownerOf.has(ref)) owner = ownerOf.get(ref);
    else {
      owner = lookup(ref);
      ownerOf.set(ref, owner);
    }
    return owner !== undefined && owner !== self ? owner : undefined;
  };
}

/** {@link normalizeRef} remembering its answers (references repeat across images). */
function memoizedNormalizeRef(): (ref: string) => string | undefined {
  const seen = new Map<string, string | undefined>();
  return (ref) => {
    if (seen.has(ref)) return seen.get(ref);
    const norm = normalizeRef(ref);
    seen.set(ref, norm);
    return norm;
  };
}

/** What decides a stage's result, hashed into its vertex id. */
export interface VertexIdentity {
  v: number;
  dockerfile: string;
  stage: number;
  context: string;
  platform: string;
  args: Record<string, string>;
  base: BaseRef;
  baseLabels: Record<string, string> | undefined;
  dependsOn: readonly string[];
  external: readonly string[];
}

/**
 * `canonicalJson(identity)` as text, written directly for this one shape: it runs for every stage of
 * every image, and the generic writer (a path string per value, generic key sorting) was a large
 * part of `plan`. Keys in code-unit order, undefined members omitted, strings as JSON.stringify
 * writes them — byte-identical, which test/graph/compile.test.ts checks against canonicalJson.
 */
export function vertexIdentityJson(x: VertexIdentity): string {
  let out = `{"args":${flatRecordJson(x.args)},"base":${flatRecordJson(x.base as unknown as Record<string, string | undefined>)}`;
  if (x.baseLabels !== undefined) out += `,"baseLabels":${flatRecordJson(x.baseLabels)}`;
  out += `,"context":${JSON.stringify(x.context)},"dependsOn":${stringArrayJson(x.dependsOn)},"dockerfile":${JSON.stringify(x.dockerfile)}`;
  out += `,"external":${stringArrayJson(x.external)},"platform":${JSON.stringify(x.platform)},"stage":${numberJson(x.stage)},"v":${numberJson(x.v)}}`;
  return out;
}

function flatRecordJson(o: Readonly<Record<string, string | undefined>>): string {
  const keys = Object.keys(o).sort();
  let out = '{';
  for (const k of keys) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw new TypeError(`vertex identity: ${k} is not text`);
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(k)}:${JSON.stringify(v)}`;
  }
  return `${out}}`;
}

function stringArrayJson(a: readonly string[]): string {
  let out = '[';
  for (let i = 0; i < a.length; i++) out += `${i > 0 ? ',' : ''}${JSON.stringify(a[i])}`;
  return `${out}]`;
}

function numberJson(n: number): string {
  if (!Number.isFinite(n)) throw new TypeError('vertex identity: non-finite number');
  return JSON.stringify(n);
}

export function compileGraph(input: CompileInput): CompileResult {
  return compile(input, { vertices: true });
}

/**
 * The diagnostics {@link compileGraph} gives (Dockerfile analysis per image, image cycles, unknown
 * selections), without building the vertices: lint needs only these, and hashing every stage's
 * identity is most of the rest.
 */
export function graphDiagnostics(input: CompileInput): Diagnostic[] {
  return compile(input, { vertices: false }).diagnostics;
}

function compile(input: CompileInput, what: { vertices: boolean }): CompileResult {
  const { spec } = input;
  const diagnostics: Diagnostic[] = [];
  const byName = new Map(spec.images.map((i) => [i.name, i]));

  const normalizeRefOnce = memoizedNormalizeRef();
  const specImageFor = specImageResolver(spec, normalizeRefOnce);
  const dockerfileDigests = new Map<string, string>();
  const dockerfileDigestOf = (path: string): string => {
    let d = dockerfileDigests.get(path);
    if (d === undefined) {
      d = sha256Digest(input.dockerfiles.get(path)!.text);
      dockerfileDigests.set(path, d);
    }
    return d;
  };

  // 1. Analyse each image's Dockerfile once.
  const plans = new Map<string, ImagePlan>();
  for (const image of spec.images) {
    const parsed = input.dockerfiles.get(image.dockerfile);
    if (!parsed?.dockerfile) continue;
    const platform = image.platforms[0] ?? input.hostPlatform;
    const platformSpec = parseStagePlatform(platform) ?? parseStagePlatform(input.hostPlatform)!;
    const analysis = analyzeDockerfile(parsed.dockerfile, {
      ...(image.target !== undefined ? { target: image.target } : {}),
      buildArgs: image.args,
      platform: platformSpec,
    });
    diagnostics.push(...locateAnalysisDiagnostics(analysis.diagnostics, analysis.unusedBuildArgs, image, input.displayPath ?? ((p) => p)));
    if (analysis.target < 0) continue;
    const imageDeps = new Set<string>();
    const stages: ImagePlan['stages'] = analysis.stages.map((s) => {
      const stage = parsed.dockerfile!.stages[s.index]!;
      let base: ImagePlan['stages'][number]['base'];
      switch (s.base.kind) {
        case 'scratch':
          base = { kind: 'scratch' };
          break;
        case 'stage':
          base = { kind: 'vertex', vertex: String(s.base.index) };
          break;
        case 'image': {
          const dep = specImageFor(s.base.ref, image.name);
          if (dep) {
            imageDeps.add(dep);
            base = { kind: 'spec-image', name: dep };
          } else {
            base = { kind: 'image', ref: normalizeRefOnce(s.base.ref) ?? s.base.ref };
          }
          break;
        }
      }
      const stageImageDeps: string[] = [];
      const external: string[] = [];
      for (const ext of s.externalImages) {
        const dep = specImageFor(ext, image.name);
        if (dep) {
          imageDeps.add(dep);
          stageImageDeps.push(dep);
        } else external.push(normalizeRefOnce(ext) ?? ext);
      }
      return { stage, base, dependsOn: s.dependsOn, external: [...new Set(external)].sort(), imageDeps: stageImageDeps.sort() };
    });
    plans.set(image.name, { image, platform, stages, imageDeps });
  }

  // 2. Image-level cycles.
  const cyclic = new Set<string>();
  {
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (name: string, path: string[]): void => {
      const st = state.get(name);
      if (st === 'done') return;
      if (st === 'visiting') {
        const cycle = [...path.slice(path.indexOf(name)), name];
        for (const c of cycle) cyclic.add(c);
        const img = byName.get(name)!;
        diagnostics.push({
          file: img.source.image.file,
          range: img.source.image.range,
          severity: 'error',
          code: 'graph/image-cycle',
          message: `images depend on each other in a cycle: ${cycle.join(' -> ')}`,
          hint: 'an image can build FROM another image of the spec only if that image does not, directly or indirectly, build FROM it',
        });
        return;
      }
      state.set(name, 'visiting');
      for (const d of [...(plans.get(name)?.imageDeps ?? [])].sort()) visit(d, [...path, name]);
      state.set(name, 'done');
    };
    for (const name of [...plans.keys()].sort()) visit(name, []);
  }

  // 3. Selection closure.
  const selected = new Set<string>();
  const addWithDeps = (name: string): void => {
    if (selected.has(name)) return;
    selected.add(name);
    for (const d of plans.get(name)?.imageDeps ?? []) addWithDeps(d);
  };
  for (const name of input.selection.length > 0 ? input.selection : spec.images.map((i) => i.name)) {
    if (byName.has(name)) addWithDeps(name);
    else {
      const guess = didYouMean(name, byName.keys());
      diagnostics.push({
        file: spec.file,
        severity: 'error',
        code: 'graph/unknown-image',
        message: `unknown image ${JSON.stringify(name)}`,
        ...(guess ? { hint: `did you mean '${guess}'?` } : {}),
      });
    }
  }

  // Building vertices reports nothing more.
  if (!what.vertices) return { graph: { version: GRAPH_VERSION, images: [], vertices: [] }, diagnostics };

  // 4. Vertices, dependency images first so their target ids are known.
  const vertices = new Map<string, StageVertex>();
  const order: string[] = [];
  const images: GraphImage[] = [];
  const targetVertexOf = new Map<string, string>();
  const done = new Set<string>();

  const buildImage = (name: string): void => {
    if (done.has(name) || cyclic.has(name)) return;
    done.add(name);
    const plan = plans.get(name);
    if (!plan) return;
    for (const d of [...plan.imageDeps].sort()) buildImage(d);
    if ([...plan.imageDeps].some((d) => !targetVertexOf.has(d))) return;

    const idOfStage = new Map<number, string>();
    const imageStages: string[] = [];
    const dockerfileDigest = dockerfileDigestOf(plan.image.dockerfile);
    const context = relPath(spec.dir, plan.image.context);
    const dockerfileRel = relPath(spec.dir, plan.image.dockerfile);
    for (const s of plan.stages) {
      let base: BaseRef;
      if (s.base.kind === 'spec-image') {
        base = { kind: 'vertex', vertex: targetVertexOf.get(s.base.name)!, image: s.base.name };
      } else if (s.base.kind === 'vertex') {
        base = { kind: 'vertex', vertex: idOfStage.get(Number(s.base.vertex))! };
      } else base = s.base;
      const visible = argKeysOf(s.stage.instructions);
      const args: Record<string, string> = {};
      for (const k of Object.keys(plan.image.args).sort()) if (visible.has(k)) args[k] = plan.image.args[k]!;
      const dependsOn = new Set<string>();
      if (base.kind === 'vertex') dependsOn.add(base.vertex);
      for (const i of s.dependsOn) dependsOn.add(idOfStage.get(i)!);
      for (const dep of s.imageDeps) dependsOn.add(targetVertexOf.get(dep)!);
      // The base image's labels become part of what a dependent stage starts from.
      const baseLabels = base.kind === 'vertex' && base.image ? byName.get(base.image)!.labels : undefined;
      const id = sha256Digest(
        vertexIdentityJson({
          v: GRAPH_VERSION,
          dockerfile: dockerfileDigest,
          stage: s.stage.index,
          context,
          platform: plan.platform,
          args,
          base,
          baseLabels,
          dependsOn: [...dependsOn].sort(),
          external: s.external,
        }),
      ).slice('sha256:'.length, 'sha256:'.length + 16);
      idOfStage.set(s.stage.index, id);
      imageStages.push(id);
      const existing = vertices.get(id);
      if (existing) {
        if (!existing.usedBy.includes(name)) existing.usedBy = [...existing.usedBy, name].sort();
        continue;
      }
      vertices.set(id, {
        id,
        dockerfile: dockerfileRel,
        context,
        stage: { index: s.stage.index, ...(s.stage.name !== undefined ? { name: s.stage.name } : {}) },
        platform: plan.platform,
        args,
        base,
        dependsOn: [...dependsOn].sort(),
        externalImages: s.external,
        usedBy: [name],
        steps: stepsOf(s.stage),
      });
      order.push(id);
    }
    const target = imageStages.at(-1)!;
    targetVertexOf.set(name, target);
    images.push({
      name,
      dependsOn: [...plan.imageDeps].sort(),
      destinations: plan.image.destinations.map((d) => d.text),
      stages: imageStages,
      target,
      platform: plan.platform,
      push: plan.image.push,
    });
  };
  for (const name of [...selected].sort()) buildImage(name);

  images.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    graph: { version: GRAPH_VERSION, images, vertices: order.map((id) => vertices.get(id)!) },
    diagnostics,
  };
}

/**
 * The analysis speaks about the Dockerfile; some of its findings are about the spec's fields
 * (an unknown `target`, `args` nothing consumes), so point those at the spec where it says so.
 */
function locateAnalysisDiagnostics(
  diags: readonly Diagnostic[],
  unusedArgs: readonly string[],
  image: SpecImage,
  display: (p: string) => string): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const d of diags) {
    if (d.code === 'dockerfile/unknown-target') {
      const at = image.source.fields['target'] ?? image.source.image;
      out.push({ ...d, file: at.file, range: at.range, message: `image ${image.name}: ${d.message} in ${display(image.dockerfile)}` });
    } else if (d.code === 'dockerfile/unused-build-arg') {
      for (const key of unusedArgs) {
        const at = image.source.fields[`args.${key}`] ?? image.source.fields['args'] ?? image.source.image;
        out.push({
          ...d,
          code: 'spec/unused-arg',
          file: at.file,
          range: at.range,
          message: `image ${image.name}: build arg ${key} is not declared by any ARG in ${display(image.dockerfile)}`,
          hint: `declare it with 'ARG ${key}' in the stage that uses it, or remove it from args`,
        });
      }
    } else {
      out.push({ ...d, file: d.file ?? display(image.dockerfile) });
    }
  }
  return out;
}
