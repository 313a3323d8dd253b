/**
 * Step cache keys (DESIGN.md "Key interfaces"): a step's key is sha256 over the canonical JSON of
 * everything that decides its result, and nothing else:
 * - the key version, the parent (previous step's key, or the stage's base identity for the first);
 * - the instruction's kind and semantic fields (no line numbers, no original text, no keyword
 *   casing, no comments — the parser drops those), plus its fields after expansion;
 * - the variables the step sees (ARGs in scope with a value, and ENV);
 * - the platform and the reproducibility epoch;
 * - the inputs the step reads that are not in the chain: context file digests for COPY/ADD and
 *   bind mounts, the producing stage's key for `--from=<stage>`, an image digest for
 *   `--from=<image>` — collected by the caller (I/O) and passed in as data.
 *
 * Pure: the engine and `stowage plan` call the same function, so a key plan prints is the key the
 * build looks up.
 */
import { createHash } from 'node:crypto';
import { canonicalJsonString } from '../image/canonical.js';
import type { Instruction, RunInstruction, CopyInstruction, AddInstruction, MountSpec } from '../dockerfile/types.js';
import { applyMetadataInstruction, expandInStage, resolveRunMounts, type StageState } from '../dockerfile/stage-env.js';
import { assertNever } from '../util/errors.js';

/** Bump when anything about keys or entries changes meaning: old entries then simply miss. */
export const CACHE_KEY_VERSION = 2;

/** A key: `sha256:<hex>`. */
export type StepKey = string;

/** What a stage starts from, as key material. */
export type BaseIdentity =
  | { kind: 'scratch' }
  /** An external image, by manifest digest. */
  | { kind: 'image'; digest: string }
  /** An earlier stage of this build, by its final key. */
  | { kind: 'stage'; key: StepKey };

/** One source a COPY/ADD reads, as resolved in its source tree, with its content digest. */
export interface SourceInput {
  /** Path as named or matched. */
  path: string;
  /** Where `--parents` puts it, when it applies. */
  parentsPath?: string;
  isDir: boolean;
  /** Content+mode digest of the file or tree (context: after .dockerignore). */
  digest: string;
}

/** Inputs outside the step chain, gathered by the caller (I/O). */
export interface StepInputs {
  /** COPY/ADD sources; for `--from` trees the tree identity covers content, so only paths are listed. */
  sources?: SourceInput[];
  /** `--from=<stage|image>`: the stage's final key or the image's digest. */
  fromIdentity?: string;
  /** RUN bind mounts: per mount (in order), the identity of what is mounted (context digest, stage key, image digest). */
  mountIdentities?: (string | null)[];
}

export interface StepKeyRequest {
  /** Previous step's key, or the stage's base for the first step. */
  parent: StepKey | BaseIdentity;
  instruction: Instruction;
  /** Stage state before the step. */
  state: StageState;
  platform: { os: string; architecture: string; variant?: string | undefined };
  /** RUN's network when the instruction doesn't say, and the sandbox hostname (they change what RUN sees). */
  runtime: { network: string; hostname: string };
  sourceDateEpoch?: number | undefined;
  inputs: StepInputs;
}

/** The stage's base as the parent of its first step. */
export function baseParent(base: BaseIdentity): string {
  switch (base.kind) {
    case 'scratch':
      return 'scratch';
    case 'image':
      return `image:${base.digest}`;
    case 'stage':
      return `stage:${base.key}`;
    default:
      return assertNever(base, 'base identity');
  }
}

export function stepKey(req: StepKeyRequest): StepKey {
  return sha256(keyMaterial(req));
}

/** The canonical JSON hashed into a key (exported so tests and `--debug` can show what differs). */
export function keyMaterial(req: StepKeyRequest): string {
  const { instruction: instr, state } = req;
  const parent = typeof req.parent === 'string' ? req.parent : baseParent(req.parent);
  return canonicalJsonString({
    v: CACHE_KEY_VERSION,
    parent,
    platform: { os: req.platform.os, architecture: req.platform.architecture, variant: req.platform.variant ?? '' },
    epoch: req.sourceDateEpoch ?? null,
    kind: instr.kind,
    fields: semanticFields(instr),
    expanded: expandedFields(instr, state, req),
    vars: visibleVars(state),
    inputs: req.inputs,
  });
}

/** The key of a stage that ends after `lastKey` (or has no steps: its base). */
export function stageFinalKey(base: BaseIdentity, lastKey: StepKey | undefined): StepKey {
  return lastKey ?? sha256(canonicalJsonString({ v: CACHE_KEY_VERSION, stage: baseParent(base) }));
}

/** A key for a step that cannot be known before it runs (ADD of a URL): chained from what it produced. */
export function outputKey(stepKeyOrParent: string, producedLayer: string | undefined): StepKey {
  return sha256(canonicalJsonString({ v: CACHE_KEY_VERSION, after: stepKeyOrParent, produced: producedLayer ?? null }));
}

function sha256(text: string): StepKey {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}

/** ARGs in scope with a value, then ENV (ENV wins), sorted by name: what a step's words and processes see. */
function visibleVars(state: StageState): [string, string][] {
  const vars = new Map<string, string>();
  for (const a of state.args) if (a.value !== undefined) vars.set(a.key, a.value);
  for (const [k, v] of state.env) vars.set(k, v);
  return [...vars].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The instruction without what is presentation: position, text as written, keyword casing, raw flags. */
function semanticFields(instr: Instruction): unknown {
  const { keyword: _k, range: _r, original: _o, flags: _f, ...rest } = instr;
  if (rest.kind === 'onbuild') return { ...rest, trigger: semanticFields(rest.trigger) };
  if (rest.kind === 'from') {
    const { asKeyword: _a, nameAsWritten: _n, ...from } = rest;
    return from;
  }
  if (rest.kind === 'run') return { ...rest, mounts: rest.mounts.map(mountFields) };
  if (rest.kind === 'copy') {
    // Which stage or image `--from` names is `inputs.fromIdentity` (its key or digest), not its name.
    const { from: _from, ...copy } = rest;
    return copy;
  }
  return rest;
}

/**
 * A mount without its raw text or the name in `from` (its content identity is in
 * `inputs.mountIdentities`); a secret's value is never here, only its id and where it goes.
 */
function mountFields(m: MountSpec): Omit<MountSpec, 'raw' | 'from'> & { from?: boolean } {
  const { raw: _raw, from, ...rest } = m;
  return from !== undefined ? { ...rest, from: true } : rest;
}

function expandedFields(instr: Instruction, state: StageState, req: StepKeyRequest): unknown {
  const expand = (w: string) => tryExpand(state, w);
  switch (instr.kind) {
    case 'run':
      return runFields(instr, state, req);
    case 'copy':
    case 'add':
      return copyFields(instr, expand);
    case 'workdir':
      return { path: expand(instr.path) };
    // Config-only instructions: their whole outcome (a pure function of state and fields, including
    // build args an ARG picks up) is the key material, so a hit can never restore a stale one.
    case 'env':
    case 'arg':
    case 'label':
    case 'user':
    case 'expose':
    case 'volume':
    case 'cmd':
    case 'entrypoint':
    case 'shell':
    case 'stopsignal':
    case 'healthcheck':
    case 'onbuild':
    case 'maintainer':
      return metadataOutcome(instr, state, req.platform);
    case 'from':
      return null;
    default:
      return assertNever(instr, 'instruction');
  }
}

function metadataOutcome(instr: Instruction, state: StageState, platform: StepKeyRequest['platform']): unknown {
  try {
    const r = applyMetadataInstruction(state, instr, { platform: { os: platform.os, architecture: platform.architecture, ...(platform.variant ? { variant: platform.variant } : {}) } });
    return { patch: r.configPatch ?? null, createdBy: r.createdBy ?? null, author: r.author ?? null, args: r.state.args };
  } catch {
    return 'invalid'; // the step fails when it runs
  }
}

function runFields(instr: RunInstruction, state: StageState, req: StepKeyRequest): unknown {
  let mounts: unknown;
  try {
    mounts = resolveRunMounts(instr, state).map(mountFields);
  } catch {
    mounts = 'invalid'; // the step will fail when it runs; the key only has to be stable
  }
  return {
    mounts,
    network: instr.network && instr.network !== 'default' ? instr.network : req.runtime.network,
    hostname: req.runtime.hostname,
  };
}

function copyFields(instr: CopyInstruction | AddInstruction, expand: (w: string) => string): unknown {
  return {
    sources: instr.sources.map(expand),
    dest: expand(instr.dest),
    chown: instr.chown !== undefined ? expand(instr.chown) : null,
    chmod: instr.chmod !== undefined ? expand(instr.chmod) : null,
    exclude: instr.exclude.map(expand),
    heredocs: instr.heredocs.map((h) => ({ name: h.name, content: h.expand ? expand(h.body) : h.body })),
    checksum: instr.kind === 'add' && instr.checksum !== undefined ? expand(instr.checksum) : null,
  };
}

function tryExpand(state: StageState, word: string): string {
  try {
    return expandInStage(state, word);
  } catch {
    return `\0unexpandable\0${word}`;
  }
}

