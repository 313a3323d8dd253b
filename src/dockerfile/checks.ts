/**
 * BuildKit build checks (`docker build --check`, DOCKERFILE.md A25), evaluated without building.
 * Diagnostics carry code = the rule name, message = BuildKit's Detail text, the instruction's
 * range, and severity `warning` (`error` when `# check=error=true`).
 *
 * Rules that BuildKit evaluates while converting stages (UndefinedVar, JSONArgsRecommended,
 * WorkdirRelativePath, CopyIgnoredFile) only look at stages reachable from the target, as
 * BuildKit does; the others look at every instruction. InvalidBaseImagePlatform needs the pulled
 * base image and is not run here.
 */
import type { Diagnostic, SourceRange } from '../util/errors.js';
import { suggest as didYouMean } from './suggest.js';
import { parseRaw, type RawNode, type RawParseResult } from './ast.js';
import { analyzeDockerfile } from './analyze.js';
import { parseDockerfile, parseInstruction } from './parse.js';
import { lexWord } from './shell-lex.js';
import { predefinedArgs, PROXY_ARGS, type PlatformSpec } from './stage-env.js';
import type { Dockerfile, Instruction, Stage } from './types.js';

export const RULE_URLS: Readonly<Record<string, string>> = {
  StageNameCasing: 'stage-name-casing',
  FromAsCasing: 'from-as-casing',
  NoEmptyContinuation: 'no-empty-continuation',
  ConsistentInstructionCasing: 'consistent-instruction-casing',
  DuplicateStageName: 'duplicate-stage-name',
  ReservedStageName: 'reserved-stage-name',
  JSONArgsRecommended: 'json-args-recommended',
  MaintainerDeprecated: 'maintainer-deprecated',
  UndefinedArgInFrom: 'undefined-arg-in-from',
  WorkdirRelativePath: 'workdir-relative-path',
  UndefinedVar: 'undefined-var',
  MultipleInstructionsDisallowed: 'multiple-instructions-disallowed',
  LegacyKeyValueFormat: 'legacy-key-value-format',
  RedundantTargetPlatform: 'redundant-target-platform',
  SecretsUsedInArgOrEnv: 'secrets-used-in-arg-or-env',
  InvalidDefaultArgInFrom: 'invalid-default-arg-in-from',
  FromPlatformFlagConstDisallowed: 'from-platform-flag-const-disallowed',
  CopyIgnoredFile: 'copy-ignored-file',
  InvalidDefinitionDescription: 'invalid-definition-description',
  ExposeProtoCasing: 'expose-proto-casing',
  ExposeInvalidFormat: 'expose-invalid-format',
};

/** Rules this module implements. */
export const IMPLEMENTED_CHECKS: ReadonlySet<string> = new Set(Object.keys(RULE_URLS));

/** Off unless enabled with `# check=experimental=<rule>|all`. */
const EXPERIMENTAL = new Set(['InvalidDefinitionDescription', 'MultipleInstructionsDisallowed']);

export interface CheckOptions {
  file?: string;
  buildArgs?: Record<string, string>;
  /** .dockerignore patterns (for CopyIgnoredFile). */
  dockerignore?: string[];
  target?: string;
  platform?: PlatformSpec;
  /** The env of an external base image, when known (for UndefinedVar). Unknown → UndefinedVar skipped there. */
  baseImageEnv?: (ref: string) => string[] | undefined;
}

export interface CheckConfig {
  skip: Set<string>;
  skipAll: boolean;
  error: boolean;
  experimental: Set<string>;
  experimentalAll: boolean;
}

/** Parse a `check=` value: `skip=A,B|all;error=true;experimental=C`. A trailing `// comment` is ignored. */
export function parseCheckDirective(value: string | undefined): CheckConfig {
  const cfg: CheckConfig = { skip: new Set(), skipAll: false, error: false, experimental: new Set(), experimentalAll: false };
  if (value === undefined) return cfg;
  const v = value.split('//')[0]!.trim();
  for (const part of v.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    const val = part.slice(eq + 1).trim();
    if (key === 'skip') {
      for (const r of val.split(',').map((s) => s.trim())) {
        if (r === 'all') cfg.skipAll = true;
        else if (r !== '') cfg.skip.add(r);
      }
    } else if (key === 'error') {
      cfg.error = val.toLowerCase() === 'true';
    } else if (key === 'experimental') {
      for (const r of val.split(',').map((s) => s.trim())) {
        if (r === 'all') cfg.experimentalAll = true;
        else if (r !== '') cfg.experimental.add(r);
      }
    }
  }
  return cfg;
}

const SECRET_TOKENS = ['apikey', 'auth', 'credential', 'credentials', 'key', 'password', 'pword', 'passwd', 'secret', 'token', 'passphrase'];
const SECRET_RE = new RegExp(`(?:_|^)(?:${SECRET_TOKENS.join('|')})$`, 'i');
const SECRET_ALLOW_RE = /(?:_|^)(?:public|file)(?:_|$)/i;

export function looksLikeSecret(name: string): boolean {
  if (SECRET_ALLOW_RE.test(name)) return false;
  return SECRET_RE.test(name);
}

/** Docker reference grammar (distribution/reference), enough to call a FROM value invalid. */
export function isValidImageReference(ref: string): boolean {
  return ref.length <= 255 + 128 && IMAGE_REFERENCE_RE.test(ref);
}

/** Built once: compiling it per FROM was a visible part of linting hundreds of Dockerfiles. */
const IMAGE_REFERENCE_RE = (() => {
  const component = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
  const domain = '(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?';
  const name = `(?:${domain}/)?${component}(?:/${component})*`;
  return new RegExp(`^${name}(?::[\\w][\\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`);
})();

// ---------------------------------------------------------------------------------------------
// .dockerignore matching (A11), enough for CopyIgnoredFile

function cleanRel(p: string): string {
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return parts.length === 0 ? '.' : parts.join('/');
}

function globToRegex(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += '\\' + pattern[++i];
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += '[' + pattern.slice(i + 1, end).replace(/^!/, '^') + ']';
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\]\\]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

/** True when `path` (relative to the context) is excluded by the patterns (last match wins, parents count). */
export function isIgnored(path: string, patterns: readonly string[]): boolean {
  const rel = cleanRel(path);
  const compiled = patterns
    .filter((p) => !p.startsWith('#') && p.trim() !== '')
    .map((p) => {
      let t = p.trim();
      const negate = t.startsWith('!');
      if (negate) t = t.slice(1).trim();
      t = cleanRel(t.replace(/^\//, ''));
      return { negate, re: globToRegex(t), raw: t };
    });
  const candidates: string[] = [rel];
  const segs = rel.split('/');
  for (let i = 1; i < segs.length; i++) candidates.push(segs.slice(0, i).join('/'));
  let ignored = false;
  for (const p of compiled) {
    if (candidates.some((c) => p.re.test(c))) ignored = !p.negate;
  }
  return ignored;
}

// ---------------------------------------------------------------------------------------------

interface Emit {
  (rule: string, range: SourceRange, message: string, node?: { localSkip: CheckConfig | undefined }): void;
}

function isSelfConsistentCasing(s: string): boolean {
  return s === s.toLowerCase() || s === s.toUpperCase();
}

/**
 * Run the build checks over Dockerfile text (or an already parsed Dockerfile with its text).
 * A Dockerfile that does not parse yields the parse errors followed by the warnings collected for
 * the instructions that did parse (BuildKit reports warnings before the error).
 */
export function runBuildChecks(input: string | { text: string; dockerfile?: Dockerfile; raw?: RawParseResult }, options: CheckOptions = {}): Diagnostic[] {
  const text = typeof input === 'string' ? input : input.text;
  const file = options.file;
  // `raw`, when given, is `parseRaw(text)` kept from parsing the Dockerfile (it is never changed).
  const raw = (typeof input !== 'string' ? input.raw : undefined) ?? parseRaw(text);
  if (raw.error !== undefined) return [];
  const buildArgs = options.buildArgs ?? {};
  const directive = raw.directives.find((d) => d.name === 'check')?.value;
  const cfg = parseCheckDirective(hasOwn(buildArgs, 'BUILDKIT_DOCKERFILE_CHECK') ? buildArgs.BUILDKIT_DOCKERFILE_CHECK : directive);
  const out: Diagnostic[] = [];
  const enabled = (rule: string, local?: CheckConfig) => {
    if (cfg.skipAll || cfg.skip.has(rule)) return false;
    if (local !== undefined && (local.skipAll || local.skip.has(rule))) return false;
    if (EXPERIMENTAL.has(rule) && !cfg.experimentalAll && !cfg.experimental.has(rule)) return false;
    return true;
  };
  // `# check=skip=…` comments directly above an instruction apply to it alone.
  const localOf = new Map<number, CheckConfig>();
  for (const n of raw.nodes) {
    const local = n.prevComment.filter((c) => /^check\s*=/i.test(c)).map((c) => c.replace(/^check\s*=\s*/i, ''));
    if (local.length > 0) localOf.set(n.startLine, parseCheckDirective(local.join(';')));
  }
  const emit: Emit = (rule, range, message) => {
    if (!enabled(rule, localOf.get(range.start.line))) return;
    const d: Diagnostic = { severity: cfg.error ? 'error' : 'warning', code: rule, message, range };
    if (file !== undefined) d.file = file;
    d.hint = `https://docs.docker.com/go/dockerfile/rule/${RULE_URLS[rule] ?? ''}/`;
    out.push(d);
  };

  // Parser-level: NoEmptyContinuation
  for (const e of raw.emptyContinuations) {
    emit('NoEmptyContinuation', { start: { line: e.line, column: 1 }, end: { line: e.line, column: 1 } }, 'Empty continuation line');
  }

  // ConsistentInstructionCasing over stage FROMs and stage commands (not meta ARGs).
  const stageNodes: RawNode[] = [];
  let seenFrom = false;
  for (const n of raw.nodes) {
    if (n.value === 'from') seenFrom = true;
    if (seenFrom) stageNodes.push(n);
  }
  let lower = 0;
  let upper = 0;
  for (const n of stageNodes) {
    if (!isSelfConsistentCasing(n.keyword)) continue;
    if (n.keyword === n.keyword.toLowerCase()) lower++;
    else upper++;
  }
  const majorityLower = lower > upper;
  for (const n of stageNodes) {
    let want = '';
    if (majorityLower && n.keyword.toLowerCase() !== n.keyword) want = 'lowercase';
    else if (!majorityLower && n.keyword.toUpperCase() !== n.keyword) want = 'uppercase';
    if (want !== '') emit('ConsistentInstructionCasing', n.range, `Command '${n.keyword}' should match the case of the command majority (${want})`);
  }

  // Per-node checks that need no typed parse.
  for (const n of raw.nodes) {
    if (n.value === 'from' && n.args.length === 3) {
      const as = n.args[1] as string;
      const cmd = n.keyword;
      const fromLower = cmd.toLowerCase() === cmd;
      const fromUpper = cmd.toUpperCase() === cmd;
      if ((fromLower && as.toLowerCase() !== as) || (!fromLower && fromUpper && as.toUpperCase() !== as)) {
        emit('FromAsCasing', n.range, `'${as}' and '${cmd}' keywords' casing do not match`);
      }
    }
  }

  // Typed checks: parse what parses (warnings come before errors, as in BuildKit).
  const parsed = typeof input !== 'string' && input.dockerfile !== undefined ? { dockerfile: input.dockerfile } : parseDockerfile(text, { file: file ?? 'Dockerfile' });
  const df = parsed.dockerfile ?? partialDockerfile(raw.nodes, raw.escapeToken);
  typedChecks(df, raw.nodes, options, emit);
  return out;
}

function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

/** The instructions that do parse, grouped into stages, for warnings before a parse error. */
function partialDockerfile(nodes: RawNode[], escape: string): Dockerfile {
  const df: Dockerfile = { directives: { escape }, metaArgs: [], stages: [] };
  // Parse node by node with the instruction parsers.
  let current: Stage | undefined;
  for (const n of nodes) {
    let instr: Instruction;
    try {
      instr = parseInstruction(n);
    } catch {
      continue;
    }
    if (instr.kind === 'from') {
      current = { index: df.stages.length, from: instr, instructions: [], range: instr.range };
      if (instr.name !== undefined) current.name = instr.name;
      df.stages.push(current);
    } else if (current === undefined) {
      if (instr.kind === 'arg') df.metaArgs.push(instr);
    } else current.instructions.push(instr);
  }
  return df;
}


function typedChecks(df: Dockerfile, nodes: RawNode[], options: CheckOptions, emit: Emit): void {
  const buildArgs = options.buildArgs ?? {};
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const predefined = predefinedArgs(platform);
  const commentsAt = new Map<number, string[]>();
  for (const n of nodes) commentsAt.set(n.startLine, n.prevComment);

  // Meta args: secrets, descriptions.
  const metaDeclared = new Set<string>();
  const metaDefaults = new Map<string, string | undefined>();
  for (const [k, v] of predefined) metaDefaults.set(k, v);
  for (const a of df.metaArgs) {
    definitionDescription('ARG', a.args.map((x) => x.key), commentsAt.get(a.range.start.line) ?? [], a.range, emit);
    const snapshot = new Map(metaDefaults);
    for (const kv of a.args) {
      metaDeclared.add(kv.key);
      if (looksLikeSecret(kv.key)) emit('SecretsUsedInArgOrEnv', a.range, `Do not use ARG or ENV instructions for sensitive data (ARG "${kv.key}")`);
      let value: string | undefined;
      if (kv.value !== undefined) {
        try {
          value = lexWord(kv.value, (n) => snapshot.get(n), { escape: df.directives.escape }).word;
        } catch {
          value = '';
        }
      } else value = metaDefaults.get(kv.key);
      metaDefaults.set(kv.key, value);
    }
  }

  const seenNames = new Map<string, number>();
  for (const stage of df.stages) {
    const from = stage.from;
    const r = from.range;
    if (from.nameAsWritten !== undefined && from.nameAsWritten !== from.nameAsWritten.toLowerCase()) {
      emit('StageNameCasing', r, `Stage name '${from.nameAsWritten}' should be lowercase`);
    }
    if (stage.name !== undefined) {
      if (stage.name === 'scratch' || stage.name === 'context') {
        emit('ReservedStageName', r, `Stage name should not use the same name as reserved stage "${stage.name}"`);
      }
      if (seenNames.has(stage.name)) emit('DuplicateStageName', r, `Duplicate stage name "${stage.name}", stage names should be unique`);
      else seenNames.set(stage.name, stage.index);
      definitionDescription('FROM', [stage.name], commentsAt.get(r.start.line) ?? [], r, emit);
    }
    // FROM args: undefined, invalid defaults
    const fromWords = [from.image, ...(from.platform !== undefined ? [from.platform] : [])];
    const declaredForFrom = new Set<string>([...metaDeclared, ...predefined.keys()]);
    for (const w of fromWords) {
      const refs = lexSafe(w, () => undefined, df.directives.escape);
      for (const name of [...refs.unmatched, ...refs.matched]) {
        if (declaredForFrom.has(name)) continue;
        const s = didYouMean(name, [...declaredForFrom]);
        emit('UndefinedArgInFrom', r, `FROM argument '${name}' is not declared${s ? ` (did you mean ${s}?)` : ''}`);
      }
    }
    if (from.image.includes('$')) {
      let expanded: string | undefined;
      try {
        expanded = lexWord(from.image, (n) => metaDefaults.get(n), { escape: df.directives.escape }).word;
      } catch {
        expanded = undefined;
      }
      const isStage = expanded !== undefined && seenNames.has(expanded.toLowerCase());
      if (expanded !== undefined && !isStage && expanded.toLowerCase() !== 'scratch' && (expanded === '' || !isValidImageReference(expanded))) {
        emit('InvalidDefaultArgInFrom', r, `Default value for ARG ${from.image} results in empty or invalid base image name`);
      }
    }
    if (from.platform !== undefined) {
      const p = from.platform;
      if (p === '$TARGETPLATFORM' || p === '${TARGETPLATFORM}') {
        emit('RedundantTargetPlatform', r, `Setting platform to predefined ${p} in FROM is redundant as this is the default behavior`);
      } else if (!p.includes('$')) {
        const [os = '', arch = ''] = p.split('/');
        const name = stage.name ?? '';
        if (name === '' || !((os !== '' && name.includes(os)) || (arch !== '' && name.includes(arch)))) {
          emit('FromPlatformFlagConstDisallowed', r, `FROM --platform flag should not use constant value "${p}"`);
        }
      }
    }
    // Parse-level checks on the stage body.
    const counts = new Map<string, number>();
    for (const i of stage.instructions) {
      switch (i.kind) {
        case 'maintainer':
          emit('MaintainerDeprecated', i.range, 'Maintainer instruction is deprecated in favor of using label');
          break;
        case 'cmd':
        case 'entrypoint':
        case 'healthcheck': {
          const c = (counts.get(i.kind) ?? 0) + 1;
          counts.set(i.kind, c);
          if (c > 1) {
            emit(
              'MultipleInstructionsDisallowed',
              i.range,
              `Multiple ${i.kind.toUpperCase()} instructions should not be used in the same stage because only the last one will be used`,
            );
          }
          break;
        }
        default:
          break;
      }
    }
  }

  // Conversion-time checks: only stages reachable from the target.
  let reachable: Set<number>;
  try {
    const a = analyzeDockerfile(df, { buildArgs, platform, ...(options.target !== undefined ? { target: options.target } : {}) });
    reachable = new Set(a.stages.map((s) => s.index));
    if (a.target < 0) reachable = new Set(df.stages.map((s) => s.index));
  } catch {
    reachable = new Set(df.stages.map((s) => s.index));
  }
  const stageInfo = new Map<number, { shellSet: boolean; workdirSet: boolean; env: Set<string> | undefined; args: Set<string> }>();
  for (const stage of df.stages) {
    const parentIdx = df.stages.findIndex((s, idx) => idx < stage.index && s.name !== undefined && s.name === lexSafeWord(stage.from.image, df).toLowerCase());
    const parent = parentIdx >= 0 ? stageInfo.get(parentIdx) : undefined;
    const baseRef = lexSafeWord(stage.from.image, df);
    let env: Set<string> | undefined;
    if (parent !== undefined) env = parent.env === undefined ? undefined : new Set(parent.env);
    else if (baseRef.toLowerCase() === 'scratch') env = new Set(['PATH']);
    else {
      const e = options.baseImageEnv?.(baseRef);
      env = e === undefined ? undefined : new Set(e.map((kv) => kv.split('=')[0] as string).concat('PATH'));
    }
    const info = {
      shellSet: parent?.shellSet ?? false,
      workdirSet: parent?.workdirSet ?? false,
      env,
      args: new Set(parent?.args ?? []),
    };
    const live = reachable.has(stage.index);
    for (const i of stage.instructions) {
      const defined = (): string[] => [...(info.env ?? []), ...info.args];
      const check = (words: string[]) => {
        if (!live || info.env === undefined) return;
        const known = new Set(defined());
        for (const w of words) {
          const refs = lexSafe(w, (n) => (known.has(n) ? '' : undefined), df.directives.escape);
          for (const name of refs.unmatched) {
            if (PROXY_ARGS.includes(name)) continue;
            const s = didYouMean(name, [...known]);
            emit('UndefinedVar', i.range, `Usage of undefined variable '$${name}'${s ? ` (did you mean $${s}?)` : ''}`);
          }
        }
      };
      switch (i.kind) {
        case 'shell':
          info.shellSet = true;
          break;
        case 'cmd':
        case 'entrypoint':
          if (live && i.command.form === 'shell' && !info.shellSet) {
            emit('JSONArgsRecommended', i.range, `JSON arguments recommended for ${i.kind.toUpperCase()} to prevent unintended behavior related to OS signals`);
          }
          break;
        case 'workdir':
          check([i.path]);
          if (!i.path.startsWith('/') && !info.workdirSet && live) {
            emit('WorkdirRelativePath', i.range, `Relative workdir "${i.path}" can have unexpected results if the base image changes`);
          }
          info.workdirSet = true;
          break;
        case 'copy':
        case 'add': {
          const words = [...i.sources, i.dest, ...(i.chown ? [i.chown] : []), ...(i.chmod ? [i.chmod] : [])];
          check(words);
          const isCopyFromStage = i.kind === 'copy' && i.from !== undefined;
          if (live && !isCopyFromStage && options.dockerignore !== undefined && options.dockerignore.length > 0) {
            for (const src of i.sources) {
              if (/^[a-z][a-z0-9+.-]*:\/\//i.test(src) || src.startsWith('git@')) continue;
              const path = lexSafeWord(src, df);
              if (isIgnored(path, options.dockerignore)) {
                emit('CopyIgnoredFile', i.range, `Attempting to ${i.kind === 'copy' ? 'Copy' : 'Add'} file "${src}" that is excluded by .dockerignore`);
              }
            }
          }
          break;
        }
        case 'env':
          if (live) {
            if (i.legacy) emit('LegacyKeyValueFormat', i.range, '"ENV key=value" should be used instead of legacy "ENV key value" format');
            for (const p of i.pairs) {
              if (looksLikeSecret(p.key)) emit('SecretsUsedInArgOrEnv', i.range, `Do not use ARG or ENV instructions for sensitive data (ENV "${p.key}")`);
            }
          }
          // one snapshot per instruction: keys become defined afterwards
          check(i.pairs.flatMap((p) => [p.key, p.value]));
          if (info.env !== undefined) for (const p of i.pairs) info.env.add(lexSafeWord(p.key, df));
          break;
        case 'label':
          if (live && i.legacy) emit('LegacyKeyValueFormat', i.range, '"LABEL key=value" should be used instead of legacy "LABEL key value" format');
          check(i.pairs.flatMap((p) => [p.key, p.value]));
          break;
        case 'arg':
          definitionDescription('ARG', i.args.map((x) => x.key), commentsAt.get(i.range.start.line) ?? [], i.range, emit);
          if (live) {
            for (const kv of i.args) {
              if (looksLikeSecret(kv.key)) emit('SecretsUsedInArgOrEnv', i.range, `Do not use ARG or ENV instructions for sensitive data (ARG "${kv.key}")`);
            }
          }
          check(i.args.flatMap((a) => (a.value !== undefined ? [a.value] : [])));
          for (const a of i.args) info.args.add(a.key);
          break;
        case 'expose':
          if (live) exposeChecks(i.ports, i.range, emit);
          check(i.ports);
          break;
        case 'user':
          check([i.user]);
          break;
        case 'stopsignal':
          check([i.signal]);
          break;
        case 'volume':
          check(i.paths);
          break;
        default:
          break;
      }
    }
    stageInfo.set(stage.index, info);
  }
}

function lexSafe(word: string, env: (n: string) => string | undefined, escape: string): { matched: Set<string>; unmatched: Set<string> } {
  try {
    const r = lexWord(word, env, { escape });
    return { matched: r.matched, unmatched: r.unmatched };
  } catch {
    return { matched: new Set(), unmatched: new Set() };
  }
}

function lexSafeWord(word: string, df: Dockerfile): string {
  try {
    return lexWord(word, () => undefined, { escape: df.directives.escape }).word;
  } catch {
    return word;
  }
}

function definitionDescription(instruction: string, keys: string[], comments: string[], range: SourceRange, emit: Emit): void {
  const descs = comments.filter((c) => !/^(check|syntax|escape)\s*=/i.test(c));
  if (descs.length === 0 || keys.length === 0) return;
  const first = (descs[descs.length - 1] as string).split(' ')[0];
  if (keys.includes(first as string)) return;
  const example = keys.length > 1 ? '<arg_key>' : (keys[0] as string);
  emit('InvalidDefinitionDescription', range, `Comment for ${instruction} should follow the format: \`# ${example} <description>\``);
}

function exposeChecks(ports: string[], range: SourceRange, emit: Emit): void {
  for (const w of [...ports].sort()) {
    if (w.includes(':')) emit('ExposeInvalidFormat', range, `EXPOSE instruction should not define an IP address or host-port mapping, found '${w}'`);
    const slash = w.lastIndexOf('/');
    if (slash >= 0) {
      const proto = w.slice(slash + 1);
      if (proto !== proto.toLowerCase()) emit('ExposeProtoCasing', range, `Defined protocol '${w}' in EXPOSE instruction should be lowercase`);
    }
  }
}
