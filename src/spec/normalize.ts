/**
 * Schema-valid spec data → BuildSpec. Pure: no file system, no process.env — the caller passes
 * `--var` values and the environment, and performs the file-system checks returned in `fsChecks`.
 *
 * Merge order for an image (see docs/spec-merge.md): defaults < extends[0] < extends[1] < … < the
 * image's own fields. Scalars: later wins. args/labels/secrets: merged key by key, later wins.
 * platforms/destinations: replaced as a whole. `matrix` and `extends` are never inherited.
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { Diagnostic, SourceRange } from '../util/errors.js';
import { didYouMean } from '../util/levenshtein.js';
import { destinationKey, parseDestination, parseRegistryRef } from './destination.js';
import { isGlob, matchGlob } from './glob.js';
import { interpolate, type InterpolationScope } from './interpolate.js';
import { normalizePlatform } from './platform.js';
import type { BuildSpec, Destination, SecretSource, SourceLocation, SpecImage, VarValue } from './types.js';
import type { DataPath, Located } from './yaml.js';

type Scalar = string | number | boolean;

interface RawFields {
  context?: string;
  dockerfile?: string;
  target?: string;
  args?: Record<string, Scalar>;
  labels?: Record<string, Scalar>;
  platforms?: string[];
  destinations?: string[];
  push?: boolean;
  noCache?: boolean;
  secrets?: Record<string, { env?: string; file?: string }>;
}
interface RawImage extends RawFields {
  extends?: string | string[];
  matrix?: Record<string, unknown>;
}
type RawVar = Scalar | { type?: 'string' | 'number' | 'bool'; default?: Scalar; description?: string };
interface RawSpec {
  version: 1;
  vars?: Record<string, RawVar>;
  defaults?: RawFields;
  templates?: Record<string, RawImage>;
  images: Record<string, RawImage>;
  groups?: Record<string, string[]>;
  execution?: { jobs?: number; failure?: 'fail-fast' | 'keep-going'; publish?: 'immediate' | 'after-all' };
  cache?: { repo: string; ttl?: string };
}

/** A value together with the data path where it was written. */
interface Sourced<T> {
  value: T;
  path: DataPath;
}
interface Merged {
  context?: Sourced<string>;
  dockerfile?: Sourced<string>;
  target?: Sourced<string>;
  push?: Sourced<boolean>;
  noCache?: Sourced<boolean>;
  platforms?: Sourced<string[]>;
  destinations?: Sourced<string[]>;
  args: Record<string, Sourced<Scalar>>;
  labels: Record<string, Sourced<Scalar>>;
  secrets: Record<string, Sourced<{ env?: string; file?: string }>>;
  mapPaths: { args?: DataPath; labels?: DataPath; secrets?: DataPath };
}

export interface FsCheck {
  kind: 'directory' | 'file';
  path: string;
  what: string;
  location: SourceLocation;
  /** When set, the real path (symlinks resolved) must stay inside this directory. */
  mustStayInside?: string;
}

export interface NormalizeInput {
  data: unknown;
  /** Absolute path of the spec file. */
  file: string;
  /** Path shown to the user. */
  displayFile: string;
  locate: (path: DataPath) => Located;
  vars: Record<string, string>;
  env: Record<string, string | undefined>;
}

export interface NormalizeOutput {
  spec: BuildSpec;
  diagnostics: Diagnostic[];
  fsChecks: FsCheck[];
}

export const MAX_MATRIX_COMBINATIONS = 4096;
const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function normalizeSpec(input: NormalizeInput): NormalizeOutput {
  const raw = input.data as RawSpec;
  const dir = resolve(input.file, '..');
  const diagnostics: Diagnostic[] = [];
  const fsChecks: FsCheck[] = [];
  // Template and defaults fields are shared by many images: look each path up once.
  const locCache = new Map<string, SourceLocation>();
  const loc = (path: DataPath): SourceLocation => {
    const k = path.join('\u0000');
    let l = locCache.get(k);
    if (!l) {
      l = { file: input.displayFile, range: input.locate(path).range };
      locCache.set(k, l);
    }
    return l;
  };
  const keyLoc = (path: DataPath): SourceLocation => {
    const l = input.locate(path);
    return { file: input.displayFile, range: l.keyRange ?? l.range };
  };
  const report = (severity: Diagnostic['severity'], code: string, where: SourceLocation | undefined, message: string, hint?: string) => {
    diagnostics.push({ file: where?.file ?? input.displayFile, range: where?.range, severity, code, message, hint });
  };
  /** Points at `needle` inside a scalar when it can be found in the source text, else at the scalar. */
  const locIn = (path: DataPath, needle: string): SourceLocation => {
    const l = input.locate(path);
    const at = l.sourceText?.indexOf(needle) ?? -1;
    if (at < 0 || !l.sourceText || l.sourceText.slice(0, at).includes('\n') || needle.includes('\n')) return { file: input.displayFile, range: l.range };
    const start = { line: l.range.start.line, column: l.range.start.column + at };
    return { file: input.displayFile, range: { start, end: { line: start.line, column: start.column + needle.length } } };
  };

  const vars = resolveVars(raw, input, report, keyLoc, loc);
  const varText: Record<string, string> = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, String(v)]));

  const interp = (text: string, path: DataPath, scope: InterpolationScope): string | undefined => {
    const r = interpolate(text, scope);
    if (r.ok) return r.value;
    for (const p of r.problems) report('error', 'spec/interpolation', locIn(path, p.expression), p.message, p.hint);
    return undefined;
  };

  const templates = raw.templates ?? {};
  const images = raw.images ?? {};
  for (const name of Object.keys(templates)) {
    if (Object.hasOwn(images, name)) {
      report('error', 'spec/ambiguous-name', keyLoc(['templates', name]), `'${name}' is both a template and an image`, 'rename one of them so `extends` is unambiguous');
    }
  }

  // --- extends resolution (memoised per call; cycles reported once) -------------------------
  const resolved = new Map<string, Merged>();
  const resolving: string[] = [];
  const resolveNamed = (kind: 'templates' | 'images', name: string): Merged => {
    const id = `${kind}/${name}`;
    const done = resolved.get(id);
    if (done) return done;
    const rawNode = (kind === 'templates' ? templates : images)[name]!;
    resolving.push(id);
    let merged = emptyMerged();
    const ext = rawNode.extends === undefined ? [] : Array.isArray(rawNode.extends) ? rawNode.extends : [rawNode.extends];
    ext.forEach((target, i) => {
      const path: DataPath = Array.isArray(rawNode.extends) ? [kind, name, 'extends', i] : [kind, name, 'extends'];
      const targetKind = Object.hasOwn(templates, target) ? 'templates' : Object.hasOwn(images, target) ? 'images' : undefined;
      if (!targetKind) {
        const guess = didYouMean(target, [...Object.keys(templates), ...Object.keys(images)]);
        report('error', 'spec/unknown-extends', loc(path), `'${name}' extends '${target}', which is neither a template nor an image`, guess ? `did you mean '${guess}'?` : 'define it under `templates:`');
        return;
      }
      const targetId = `${targetKind}/${target}`;
      const cycleAt = resolving.indexOf(targetId);
      if (cycleAt >= 0) {
        const chain = [...resolving.slice(cycleAt), targetId].map((s) => s.split('/')[1]).join(' → ');
        report('error', 'spec/extends-cycle', loc(path), `extends cycle: ${chain}`, 'remove one of the `extends` entries in the cycle');
        return;
      }
      merged = mergeFields(merged, resolveNamed(targetKind, target));
    });
    merged = mergeFields(merged, fieldsOf(rawNode, [kind, name]));
    resolving.pop();
    resolved.set(id, merged);
    return merged;
  };

  const defaults = fieldsOf(raw.defaults ?? {}, ['defaults']);
  const out: SpecImage[] = [];
  const families: Record<string, string[]> = {};
  const nameOwner = new Map<string, SourceLocation>();
  const explicitOutsideWarned = new Set<string>();
  const numberWarned = new Set<string>();
  const fsSeen = new Set<string>();

  for (const key of Object.keys(images)) {
    const rawImage = images[key]!;
    const merged = mergeFields(defaults, resolveNamed('images', key));
    const combos = rawImage.matrix ? expandMatrix(key, rawImage.matrix, ['images', key, 'matrix'], varText, report, loc, keyLoc, interp) : [{ name: key, values: undefined as Record<string, string> | undefined }];
    if (rawImage.matrix) families[key] = combos.map((c) => c.name).sort();
    for (const combo of combos) {
      const nameLoc = rawImage.matrix ? (rawImage.matrix.name !== undefined ? loc(['images', key, 'matrix', 'name']) : keyLoc(['images', key])) : keyLoc(['images', key]);
      if (!IMAGE_NAME.test(combo.name)) {
        report('error', 'spec/invalid-name', nameLoc, `matrix gives image '${key}' the name '${combo.name}', which is not a valid image name`, 'names use letters, digits, `.`, `_` and `-`; set `matrix.name` to a template that produces such names');
        continue;
      }
      const prior = nameOwner.get(combo.name);
      if (prior) {
        report('error', 'spec/duplicate-image', nameLoc, `two images are named '${combo.name}'`, `the other is at ${prior.file}:${prior.range.start.line}:${prior.range.start.column}; give the matrix a \`name\` template that makes every name unique`);
        continue;
      }
      nameOwner.set(combo.name, nameLoc);
      const scope: InterpolationScope = { vars: varText, matrix: combo.values, imageName: combo.name };
      const image = buildImage(combo.name, key, merged, scope, combo.values);
      if (image) out.push(image);
    }
  }

  function buildImage(name: string, key: string, m: Merged, scope: InterpolationScope, matrixValues: Record<string, string> | undefined): SpecImage | undefined {
    let ok = true;
    const str = (s: Sourced<string> | undefined): string | undefined => {
      if (!s) return undefined;
      const v = interp(s.value, s.path, scope);
      if (v === undefined) ok = false;
      return v;
    };
    const fields: Record<string, SourceLocation> = {};
    const note = (field: string, s: { path: DataPath } | undefined) => {
      if (s) fields[field] = loc(s.path);
    };

    // context: relative to the spec file; outside the spec's tree only when written so literally.
    const contextText = str(m.context) ?? '.';
    const context = resolve(dir, contextText);
    const inside = isInside(dir, context);
    const literalPrefix = m.context ? m.context.value.split('${{')[0]! : '.';
    const literalOutside = isAbsolute(literalPrefix) || !isInside(dir, resolve(dir, literalPrefix === '' ? '.' : literalPrefix));
    const contextLoc = m.context ? loc(m.context.path) : keyLoc(['images', key]);
    let contextExplicitOutside = false;
    if (!inside) {
      if (literalOutside) {
        contextExplicitOutside = true;
        const k = `${contextLoc.range.start.line}:${contextLoc.range.start.column}`;
        if (!explicitOutsideWarned.has(k)) {
          explicitOutsideWarned.add(k);
          report('warning', 'spec/context-outside', contextLoc, `context '${contextText}' is outside the spec's directory`, 'allowed because the path says so explicitly; files there become part of the build');
        }
      } else {
        ok = false;
        report('error', 'spec/context-outside', contextLoc, `context of image '${name}' resolves to '${context}', outside the spec's directory, only through interpolation`, 'write a path that leaves the spec directory literally (e.g. ../shared) if that is intended');
      }
    }
    const dockerfileText = str(m.dockerfile) ?? 'Dockerfile';
    const dockerfile = resolve(context, dockerfileText);
    const dockerfileLoc = m.dockerfile ? loc(m.dockerfile.path) : contextLoc;
    const target = str(m.target);
    note('context', m.context);
    note('dockerfile', m.dockerfile);
    note('target', m.target);
    note('push', m.push);
    note('noCache', m.noCache);

    const mapOf = (field: 'args' | 'labels'): Record<string, string> => {
      const o: Record<string, string> = {};
      for (const [k, s] of Object.entries(m[field])) {
        note(`${field}.${k}`, s);
        if (typeof s.value === 'string') {
          const v = interp(s.value, s.path, scope);
          if (v === undefined) ok = false;
          else setOwn(o, k, v);
        } else {
          const text = String(s.value);
          const written = input.locate(s.path).sourceText;
          if (typeof s.value === 'number' && written !== undefined && written !== text && !numberWarned.has(s.path.join('\u0000'))) {
            numberWarned.add(s.path.join('\u0000'));
            report('warning', 'spec/number-text', loc(s.path), `${field}.${k} is the number ${written}, which becomes '${text}'`, `quote it ("${written}") to pass it verbatim`);
          }
          setOwn(o, k, text);
        }
      }
      if (m.mapPaths[field]) fields[field] = loc(m.mapPaths[field]!);
      return o;
    };
    const args = mapOf('args');
    const labels = mapOf('labels');

    const platforms: string[] = [];
    if (m.platforms) {
      note('platforms', m.platforms);
      m.platforms.value.forEach((p, i) => {
        const path = [...m.platforms!.path, i];
        note(`platforms.${i}`, { path });
        const text = interp(p, path, scope);
        if (text === undefined) return void (ok = false);
        const r = normalizePlatform(text);
        if (!r.ok) {
          ok = false;
          report('error', 'spec/invalid-platform', loc(path), r.message, r.hint);
        } else if (!platforms.includes(r.platform)) platforms.push(r.platform);
      });
    }

    const destinations: Destination[] = [];
    if (m.destinations) {
      note('destinations', m.destinations);
      m.destinations.value.forEach((d, i) => {
        const path = [...m.destinations!.path, i];
        note(`destinations.${i}`, { path });
        const text = interp(d, path, scope);
        if (text === undefined) return void (ok = false);
        const r = parseDestination(text, dir);
        if (!r.ok) {
          ok = false;
          report('error', 'spec/invalid-destination', loc(path), r.message, r.hint);
        } else {
          destinations.push(r.value);
          const scheme = r.value.kind === 'registry' ? /^([a-z-]+):[^/]*$/.exec(text)?.[1] : undefined;
          const guess = scheme && !['oci', 'docker-archive'].includes(scheme) ? didYouMean(scheme, ['oci', 'docker-archive']) : undefined;
          if (guess) report('warning', 'spec/suspicious-destination', loc(path), `'${text}' is read as the registry image '${(r.value as { ref: string }).ref}'`, `did you mean '${guess}:'?`);
        }
      });
    }

    const secrets: Record<string, SecretSource> = {};
    for (const [id, s] of Object.entries(m.secrets)) {
      note(`secrets.${id}`, s);
      if (s.value.env !== undefined) {
        const v = interp(s.value.env, [...s.path, 'env'], scope);
        if (v === undefined) ok = false;
        else setOwn(secrets, id, { env: v });
      } else if (s.value.file !== undefined) {
        const v = interp(s.value.file, [...s.path, 'file'], scope);
        if (v === undefined) ok = false;
        else setOwn(secrets, id, { file: resolve(dir, v) });
      }
    }
    if (m.mapPaths.secrets) fields.secrets = loc(m.mapPaths.secrets);

    if (!ok) return undefined;
    const addCheck = (c: FsCheck) => {
      const k = `${c.kind}:${c.path}:${c.mustStayInside ?? ''}`;
      if (fsSeen.has(k)) return;
      fsSeen.add(k);
      fsChecks.push(c);
    };
    addCheck({ kind: 'directory', path: context, what: `context of image '${name}'`, location: contextLoc, mustStayInside: contextExplicitOutside ? undefined : dir });
    addCheck({ kind: 'file', path: dockerfile, what: `Dockerfile of image '${name}'`, location: dockerfileLoc });

    const image: SpecImage = {
      name, context, contextExplicitOutside, dockerfile, args, labels, platforms, destinations,
      push: m.push?.value ?? true, noCache: m.noCache?.value ?? false, secrets,
      source: { image: keyLoc(['images', key]), fields },
    };
    if (target !== undefined) image.target = target;
    if (matrixValues) image.matrix = matrixValues;
    return image;
  }

  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  checkDestinationConflicts(out, report);
  // Images that failed to normalise still count as names, so groups do not report them twice.
  const groups = expandGroups(raw.groups ?? {}, out.map((i) => i.name), new Set(nameOwner.keys()), families, report, loc, keyLoc);

  const execution: BuildSpec['execution'] = {
    failure: raw.execution?.failure ?? 'fail-fast',
    publish: raw.execution?.publish ?? 'immediate',
  };
  if (raw.execution?.jobs !== undefined) execution.jobs = raw.execution.jobs;

  const spec: BuildSpec = { file: input.file, dir, version: 1, vars, images: out, groups, execution, families };
  if (raw.cache) {
    const repo = interp(raw.cache.repo, ['cache', 'repo'], { vars: varText });
    if (repo !== undefined) {
      const r = parseRegistryRef(repo);
      if (!r.ok) report('error', 'spec/invalid-cache', loc(['cache', 'repo']), r.message, r.hint);
      else if (r.value.tag || r.value.digest) report('error', 'spec/invalid-cache', loc(['cache', 'repo']), `cache.repo '${repo}' must be a repository without a tag or digest`, 'write host[:port]/repo');
      else spec.cache = raw.cache.ttl !== undefined ? { repo: `${r.value.host}/${r.value.repository}`, ttl: raw.cache.ttl } : { repo: `${r.value.host}/${r.value.repository}` };
    }
  }
  return { spec, diagnostics: dedupe(diagnostics), fsChecks };
}

function emptyMerged(): Merged {
  return { args: {}, labels: {}, secrets: {}, mapPaths: {} };
}

function fieldsOf(raw: RawFields, base: DataPath): Merged {
  const m = emptyMerged();
  const scalar = <K extends 'context' | 'dockerfile' | 'target' | 'push' | 'noCache'>(k: K) => {
    if (raw[k] !== undefined) (m as unknown as Record<string, unknown>)[k] = { value: raw[k], path: [...base, k] };
  };
  scalar('context');
  scalar('dockerfile');
  scalar('target');
  scalar('push');
  scalar('noCache');
  if (raw.platforms) m.platforms = { value: raw.platforms, path: [...base, 'platforms'] };
  if (raw.destinations) m.destinations = { value: raw.destinations, path: [...base, 'destinations'] };
  for (const field of ['args', 'labels', 'secrets'] as const) {
    const map = raw[field];
    if (!map) continue;
    m.mapPaths[field] = [...base, field];
    for (const [k, v] of Object.entries(map)) setOwn(m[field] as Record<string, Sourced<unknown>>, k, { value: v, path: [...base, field, k] });
  }
  return m;
}

/** `b` over `a`: scalars and lists replaced, maps merged key by key. */
function mergeFields(a: Merged, b: Merged): Merged {
  return {
    context: b.context ?? a.context,
    dockerfile: b.dockerfile ?? a.dockerfile,
    target: b.target ?? a.target,
    push: b.push ?? a.push,
    noCache: b.noCache ?? a.noCache,
    platforms: b.platforms ?? a.platforms,
    destinations: b.destinations ?? a.destinations,
    args: { ...a.args, ...b.args },
    labels: { ...a.labels, ...b.labels },
    secrets: { ...a.secrets, ...b.secrets },
    mapPaths: { args: b.mapPaths.args ?? a.mapPaths.args, labels: b.mapPaths.labels ?? a.mapPaths.labels, secrets: b.mapPaths.secrets ?? a.mapPaths.secrets },
  };
}

type Report = (severity: Diagnostic['severity'], code: string, where: SourceLocation | undefined, message: string, hint?: string) => void;

function resolveVars(raw: RawSpec, input: NormalizeInput, report: Report, keyLoc: (p: DataPath) => SourceLocation, loc: (p: DataPath) => SourceLocation): Record<string, VarValue> {
  const decls = raw.vars ?? {};
  const out: Record<string, VarValue> = {};
  const varsLoc = raw.vars ? keyLoc(['vars']) : undefined;
  for (const name of Object.keys(input.vars)) {
    if (!Object.hasOwn(decls, name)) {
      const guess = didYouMean(name, Object.keys(decls));
      report('error', 'spec/unknown-var', varsLoc, `--var ${name}=… sets a variable the spec does not declare`, guess ? `did you mean '${guess}'?` : 'declare it under `vars:`');
    }
  }
  for (const [name, decl] of Object.entries(decls)) {
    const isObj = typeof decl === 'object' && decl !== null;
    const def = isObj ? decl.default : decl;
    const type = isObj ? decl.type ?? (def === undefined ? 'string' : typeOfScalar(def)) : typeOfScalar(decl);
    if (def !== undefined && typeOfScalar(def) !== type) {
      report('error', 'spec/var-type', loc(['vars', name, 'default']), `default of variable '${name}' is not a ${type}`);
      continue;
    }
    const cli = input.vars[name];
    const envName = `STOWAGE_VAR_${name}`;
    const env = input.env[envName];
    const [text, origin] = cli !== undefined ? [cli, `--var ${name}`] : env !== undefined ? [env, envName] : [undefined, ''];
    if (text === undefined) {
      if (def === undefined) {
        report('error', 'spec/var-unset', keyLoc(['vars', name]), `variable '${name}' has no value`, `set it with --var ${name}=… or ${envName}, or give it a default`);
        continue;
      }
      setOwn(out, name, def);
      continue;
    }
    const v = convertVar(text, type);
    if (v === undefined) {
      report('error', 'spec/var-type', keyLoc(['vars', name]), `${origin} is '${text}', which is not a ${type}`, type === 'bool' ? 'use true or false' : undefined);
      continue;
    }
    setOwn(out, name, v);
  }
  return out;
}

/** Assignment that treats `__proto__` as an ordinary key, as the YAML did. */
function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function typeOfScalar(v: Scalar): 'string' | 'number' | 'bool' {
  return typeof v === 'number' ? 'number' : typeof v === 'boolean' ? 'bool' : 'string';
}

function convertVar(text: string, type: 'string' | 'number' | 'bool'): VarValue | undefined {
  switch (type) {
    case 'string':
      return text;
    case 'number': {
      const n = Number(text);
      return text.trim() !== '' && Number.isFinite(n) ? n : undefined;
    }
    case 'bool': {
      const t = text.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(t)) return true;
      if (['false', '0', 'no', 'off'].includes(t)) return false;
      return undefined;
    }
  }
}

function expandMatrix(
  key: string,
  matrix: Record<string, unknown>,
  base: DataPath,
  vars: Record<string, string>,
  report: Report,
  loc: (p: DataPath) => SourceLocation,
  keyLoc: (p: DataPath) => SourceLocation,
  interp: (text: string, path: DataPath, scope: InterpolationScope) => string | undefined,
): { name: string; values: Record<string, string> }[] {
  const axes = Object.entries(matrix).filter(([k]) => k !== 'name' && k !== 'exclude') as [string, Scalar[]][];
  if (axes.length === 0) {
    report('error', 'spec/invalid-matrix', loc(base), `the matrix of image '${key}' has no axes`, 'add an axis, e.g. `variant: [slim, full]`');
    return [];
  }
  const total = axes.reduce((n, [, vals]) => n * vals.length, 1);
  if (total > MAX_MATRIX_COMBINATIONS) {
    report('error', 'spec/invalid-matrix', loc(base), `the matrix of image '${key}' has ${total} combinations (at most ${MAX_MATRIX_COMBINATIONS})`);
    return [];
  }
  const excludes = ((matrix.exclude as Record<string, Scalar>[] | undefined) ?? []).map((e, i) => {
    const cond: Record<string, string> = {};
    for (const [axis, v] of Object.entries(e)) {
      const values = axes.find(([a]) => a === axis)?.[1];
      if (!values) {
        const guess = didYouMean(axis, axes.map(([a]) => a));
        report('error', 'spec/invalid-matrix', keyLoc([...base, 'exclude', i, axis]), `exclude names '${axis}', which is not an axis of the matrix`, guess ? `did you mean '${guess}'?` : `axes: ${axes.map(([a]) => a).join(', ')}`);
      } else if (!values.map(String).includes(String(v))) {
        report('error', 'spec/invalid-matrix', loc([...base, 'exclude', i, axis]), `exclude names ${axis}=${String(v)}, which is not a value of that axis`, `values: ${values.map(String).join(', ')}`);
      }
      cond[axis] = String(v);
    }
    return cond;
  });
  let combos: Record<string, string>[] = [{}];
  for (const [axis, values] of axes) {
    const next: Record<string, string>[] = [];
    for (const c of combos) for (const v of values) next.push({ ...c, [axis]: String(v) });
    combos = next;
  }
  combos = combos.filter((c) => !excludes.some((ex) => Object.entries(ex).every(([a, v]) => c[a] === v)));
  if (combos.length === 0) report('warning', 'spec/empty-matrix', loc(base), `the matrix of image '${key}' excludes every combination`);
  const template = matrix.name as string | undefined;
  const out: { name: string; values: Record<string, string> }[] = [];
  for (const values of combos) {
    const name = template === undefined ? [key, ...Object.values(values)].join('-') : interp(template, [...base, 'name'], { vars, matrix: values, imageName: key });
    if (name !== undefined) out.push({ name, values });
  }
  return out;
}

function checkDestinationConflicts(images: SpecImage[], report: Report): void {
  const owners = new Map<string, { image: string; where: SourceLocation | undefined }>();
  for (const img of images) {
    img.destinations.forEach((d, i) => {
      const key = destinationKey(d);
      const where = img.source.fields[`destinations.${i}`];
      const prior = owners.get(key);
      if (prior) {
        const at = prior.where ? ` (${prior.where.file}:${prior.where.range.start.line}:${prior.where.range.start.column})` : '';
        report('error', 'spec/duplicate-destination', where, prior.image === img.name ? `image '${img.name}' lists destination '${d.text}' twice` : `images '${prior.image}' and '${img.name}' both write '${d.text}'${at}`, 'every destination must belong to one image; use ${{ image.name }} in shared destinations');
      } else owners.set(key, { image: img.name, where });
    });
  }
}

function expandGroups(
  raw: Record<string, string[]>,
  imageNames: string[],
  declaredNames: Set<string>,
  families: Record<string, string[]>,
  report: Report,
  loc: (p: DataPath) => SourceLocation,
  keyLoc: (p: DataPath) => SourceLocation,
): Record<string, string[]> {
  const imageSet = new Set(imageNames);
  for (const g of Object.keys(raw)) {
    if (imageSet.has(g) || Object.hasOwn(families, g)) report('error', 'spec/ambiguous-name', keyLoc(['groups', g]), `'${g}' is both a group and an image`, 'rename the group');
  }
  const done = new Map<string, string[]>();
  const stack: string[] = [];
  const expand = (g: string): string[] => {
    const cached = done.get(g);
    if (cached) return cached;
    stack.push(g);
    const members = new Set<string>();
    raw[g]!.forEach((m, i) => {
      const path = ['groups', g, i];
      if (isGlob(m)) {
        const hits = matchGlob(m, imageNames);
        if (hits.length === 0) report('warning', 'spec/glob-no-match', loc(path), `'${m}' in group '${g}' matches no image`);
        hits.forEach((h) => members.add(h));
      } else if (Object.hasOwn(raw, m)) {
        if (stack.includes(m)) {
          report('error', 'spec/group-cycle', loc(path), `group cycle: ${[...stack.slice(stack.indexOf(m)), m].join(' → ')}`, 'remove one of the group references in the cycle');
          return;
        }
        expand(m).forEach((h) => members.add(h));
      } else if (imageSet.has(m)) {
        members.add(m);
      } else if (declaredNames.has(m)) {
        // declared but invalid: already reported where it is defined
      } else if (Object.hasOwn(families, m)) {
        families[m]!.forEach((h) => members.add(h));
      } else {
        const guess = didYouMean(m, [...imageNames, ...Object.keys(raw), ...Object.keys(families)]);
        report('error', 'spec/unknown-image', loc(path), `group '${g}' names '${m}', which is neither an image nor a group`, guess ? `did you mean '${guess}'?` : undefined);
      }
    });
    stack.pop();
    const list = [...members].sort();
    done.set(g, list);
    return list;
  };
  const out: Record<string, string[]> = {};
  for (const g of Object.keys(raw).sort()) out[g] = expand(g);
  return out;
}

export function isInside(dir: string, p: string): boolean {
  const rel = relative(dir, p);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

function dedupe(diags: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diags.filter((d) => {
    const r: SourceRange | undefined = d.range;
    const k = `${d.file}:${r?.start.line}:${r?.start.column}:${d.code}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
