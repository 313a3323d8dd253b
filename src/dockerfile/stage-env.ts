/**
 * Per-stage semantic evaluation (DOCKERFILE.md A6–A8, A12–A20, A22, A23): ARG/ENV scoping and
 * expansion, and what every non-filesystem instruction does to the image config and history.
 *
 * A pure step function: `applyMetadataInstruction(state, instr, ctx)` returns the next state, the
 * config patch (full new values of the fields it changed), the history `created_by` text and
 * whether the history entry is an empty layer. States are never mutated.
 */
import type { ContainerConfig, HealthConfig, ImageConfig, Platform } from '../image/types.js';
import { StowageError } from '../util/errors.js';
import { goQuote, parseHeredocWord } from './ast.js';
import { InstructionError } from './instructions/common.js';
import { parseMount, withMountDefaults } from './instructions/mount.js';
import { expandWord, expandWords, type ShellEnv } from './shell-lex.js';
import type {
  AddInstruction,
  ArgInstruction,
  CommandLine,
  CopyInstruction,
  HeredocSpec,
  Instruction,
  MountSpec,
  RunInstruction,
  Stage,
} from './types.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];
export const PROXY_ARGS: readonly string[] = [
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
];

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

/** An ARG in scope: `value` undefined means declared but not set. */
export interface ScopedArg {
  key: string;
  value?: string;
}

export interface StageState {
  /** Image config env, in order (A8: ENV updates in place). */
  env: readonly (readonly [string, string])[];
  /** ARGs declared so far in this stage (and inherited from a base stage), in order. */
  args: readonly ScopedArg[];
  /** Resolved global (meta + predefined) args, visible after redeclaration. */
  globalArgs: ReadonlyMap<string, string | undefined>;
  buildArgs: Readonly<Record<string, string>>;
  /** The config fields metadata instructions change, as they stand now. */
  config: Readonly<ContainerConfig>;
  /** A CMD was set earlier in this stage (A15). */
  cmdSetInStage: boolean;
  platform: PlatformSpec;
  /** The Dockerfile's escape character (A2), used for every expansion. */
  escape: string;
}

export interface StageContext {
  platform: PlatformSpec;
}

export interface MetadataResult {
  state: StageState;
  configPatch?: Partial<ContainerConfig>;
  /** MAINTAINER sets the image's top-level `author`. */
  author?: string;
  /** Absent when BuildKit writes no history entry (ONBUILD). */
  createdBy?: string;
  emptyLayer?: boolean;
}

export function formatPlatform(p: PlatformSpec): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** The predefined global args (A7) for a target and build platform. */
export function predefinedArgs(target: PlatformSpec, build: PlatformSpec = target, targetStage = 'default'): Map<string, string> {
  return new Map([
    ['TARGETPLATFORM', formatPlatform(target)],
    ['TARGETOS', target.os],
    ['TARGETARCH', target.architecture],
    ['TARGETVARIANT', target.variant ?? ''],
    ['TARGETOSVERSION', ''],
    ['BUILDPLATFORM', formatPlatform(build)],
    ['BUILDOS', build.os],
    ['BUILDARCH', build.architecture],
    ['BUILDVARIANT', build.variant ?? ''],
    ['BUILDOSVERSION', ''],
    ['TARGETSTAGE', targetStage],
  ]);
}

function lookupOf(map: ReadonlyMap<string, string | undefined>): ShellEnv {
  return (name: string) => map.get(name);
}

/**
 * Resolve the meta args (ARGs before the first FROM) in order: build arg, else the default
 * expanded with earlier meta args and the predefined args (A7). Throws StowageError on bad
 * substitutions. Predefined args are included (build args override them).
 */
export function resolveGlobalArgs(
  metaArgs: readonly ArgInstruction[],
  buildArgs: Readonly<Record<string, string>>,
  platform: PlatformSpec,
  options: { escape?: string; buildPlatform?: PlatformSpec; targetStage?: string } = {},
): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const [k, v] of predefinedArgs(platform, options.buildPlatform ?? platform, options.targetStage)) {
    out.set(k, hasOwn(buildArgs, k) ? buildArgs[k] : v);
  }
  for (const instr of metaArgs) {
    const snapshot = new Map(out);
    for (const a of instr.args) {
      if (hasOwn(buildArgs, a.key)) out.set(a.key, buildArgs[a.key]);
      else if (a.value !== undefined) out.set(a.key, expandWord(a.value, lookupOf(snapshot), { escape: options.escape ?? '\\' }));
      else if (!out.has(a.key)) out.set(a.key, undefined);
    }
  }
  return out;
}

function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

function envPairs(env: readonly string[] | undefined): [string, string][] {
  return (env ?? []).map((kv) => {
    const eq = kv.indexOf('=');
    return eq < 0 ? [kv, ''] : [kv.slice(0, eq), kv.slice(eq + 1)];
  });
}

export interface InitialStageOptions {
  baseConfig: ImageConfig;
  /** The final state of the base stage when FROM names a stage: its ARGs stay in scope (A7). */
  inherited?: StageState | undefined;
  buildArgs: Readonly<Record<string, string>>;
  platform: PlatformSpec | Platform;
  metaArgs: readonly ArgInstruction[];
  stage?: Stage;
  escape?: string;
  buildPlatform?: PlatformSpec;
  targetStage?: string;
}

/** The state right after FROM: base config (PATH ensured, OnBuild cleared), inherited ARGs. */
export function initialStageState(opts: InitialStageOptions): StageState {
  const platform: PlatformSpec = { os: opts.platform.os, architecture: opts.platform.architecture, ...(opts.platform.variant ? { variant: opts.platform.variant } : {}) };
  let globalArgs: Map<string, string | undefined>;
  try {
    globalArgs = resolveGlobalArgs(opts.metaArgs, opts.buildArgs, platform, {
      ...(opts.escape !== undefined ? { escape: opts.escape } : {}),
      ...(opts.buildPlatform !== undefined ? { buildPlatform: opts.buildPlatform } : {}),
      ...(opts.targetStage !== undefined ? { targetStage: opts.targetStage } : {}),
    });
  } catch {
    globalArgs = predefinedArgs(platform);
  }
  const cc = opts.baseConfig.config ?? {};
  const env = envPairs(cc.Env);
  if (opts.baseConfig.os !== 'windows' && !env.some(([k]) => k === 'PATH')) env.push(['PATH', DEFAULT_PATH]);
  const config: ContainerConfig = { ...structuredClone(cc), Env: env.map(([k, v]) => `${k}=${v}`), OnBuild: null };
  return {
    env,
    args: opts.inherited ? [...opts.inherited.args] : [],
    globalArgs,
    buildArgs: opts.buildArgs,
    config,
    cmdSetInStage: false,
    platform,
    escape: opts.escape ?? '\\',
  };
}

/**
 * The config patch a stage starts with (PATH ensured, inherited OnBuild cleared) — apply it right
 * after FROM so even a stage without ENV gets PATH (A8).
 */
export function stageStartConfigPatch(state: StageState): Partial<ContainerConfig> {
  return { Env: [...(state.config.Env ?? [])], OnBuild: null };
}

/** The variables an instruction's words are expanded with (one snapshot per instruction, A6). */
export function expansionEnv(state: StageState): ShellEnv {
  const env = new Map<string, string>();
  for (const a of state.args) if (a.value !== undefined) env.set(a.key, a.value);
  for (const [k, v] of state.env) env.set(k, v); // ENV wins over ARG
  return (name: string) => env.get(name);
}

/** Expand one word with the stage env (ProcessWord). Throws StowageError. */
export function expandInStage(state: StageState, word: string, options: { escape?: string } = {}): string {
  return expandWord(word, expansionEnv(state), { escape: options.escape ?? state.escape ?? '\\' });
}

/** The process environment for RUN: image env + in-scope ARGs + undeclared proxy build args (A7, A21). */
export function runEnvironment(state: StageState): string[] {
  const out = new Map<string, string>();
  for (const p of PROXY_ARGS) if (hasOwn(state.buildArgs, p)) out.set(p, state.buildArgs[p] as string);
  for (const a of state.args) if (a.value !== undefined) out.set(a.key, a.value);
  for (const [k, v] of state.env) out.set(k, v);
  return [...out].map(([k, v]) => `${k}=${v}`);
}

function shellOf(state: StageState): string[] {
  const s = state.config.Shell;
  return s && s.length > 0 ? [...s] : [...DEFAULT_SHELL];
}

/** Go `%q` of a []string. */
export function goQuotedList(items: readonly string[]): string {
  return '[' + items.map(goQuote).join(' ') + ']';
}

/** Go `%v` of a []string. */
function goList(items: readonly string[]): string {
  return '[' + items.join(' ') + ']';
}

/** Go time.Duration String(). */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(ns);
  let out: string;
  if (u < 1e9) {
    if (u < 1e3) out = `${u}ns`;
    else if (u < 1e6) out = `${trimFrac(u / 1e3)}µs`;
    else out = `${trimFrac(u / 1e6)}ms`;
  } else {
    const h = Math.floor(u / 3600e9);
    u -= h * 3600e9;
    const m = Math.floor(u / 60e9);
    u -= m * 60e9;
    const s = `${trimFrac(u / 1e9)}s`;
    out = h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s;
  }
  return (neg ? '-' : '') + out;
}

function trimFrac(n: number): string {
  return n.toFixed(9).replace(/\.?0+$/, '');
}

function commandArgv(cmd: CommandLine, state: StageState): string[] {
  return cmd.form === 'exec' ? [...cmd.argv] : [...shellOf(state), cmd.command];
}

function cleanPath(p: string): string {
  const abs = p.startsWith('/');
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (parts.length > 0 && parts[parts.length - 1] !== '..') parts.pop();
      else if (!abs) parts.push('..');
      continue;
    }
    parts.push(seg);
  }
  const joined = parts.join('/');
  return abs ? '/' + joined : joined === '' ? '.' : joined;
}

/** nat.ParsePortSpec-style: container ports (with proto) from one EXPOSE word. */
export function exposePorts(word: string): string[] {
  let rawPort = word;
  let proto = 'tcp';
  const slash = word.lastIndexOf('/');
  if (slash >= 0) {
    rawPort = word.slice(0, slash);
    proto = word.slice(slash + 1).toLowerCase();
  }
  // [ip:][hostPort:]containerPort: the container port is the last part
  let containerPort = rawPort;
  if (rawPort.startsWith('[')) {
    const end = rawPort.lastIndexOf(']:');
    if (end >= 0) containerPort = rawPort.slice(end + 2);
  }
  const colon = containerPort.lastIndexOf(':');
  if (colon >= 0) containerPort = containerPort.slice(colon + 1);
  if (containerPort === '') throw new StowageError('dockerfile/bad-port', `no port specified: ${word}<empty>`);
  const range = /^(\d+)(?:-(\d+))?$/.exec(containerPort);
  if (range === null) throw new StowageError('dockerfile/bad-port', `invalid containerPort: ${containerPort}`);
  const start = Number(range[1]);
  const end = range[2] !== undefined ? Number(range[2]) : start;
  if (start > 65535 || end > 65535 || end < start) throw new StowageError('dockerfile/bad-port', `invalid containerPort: ${containerPort}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}

const SIGNALS = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR', 'QUIT',
  'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
]);

/** moby signal.ParseSignal: a number, or a name with or without SIG (RTMIN+n too). */
export function isValidSignal(s: string): boolean {
  if (/^\d+$/.test(s)) return Number(s) > 0;
  const name = s.toUpperCase().replace(/^SIG/, '');
  if (SIGNALS.has(name)) return true;
  return /^RTM(IN|AX)([+-]\d+)?$/.test(name);
}

function healthString(h: HealthConfig): string {
  return (
    `{Test:${goList(h.Test ?? [])} Interval:${goDuration(h.Interval ?? 0)} Timeout:${goDuration(h.Timeout ?? 0)} ` +
    `StartPeriod:${goDuration(h.StartPeriod ?? 0)} StartInterval:${goDuration(h.StartInterval ?? 0)} Retries:${h.Retries ?? 0}}`
  );
}

/**
 * Apply one instruction that changes only the config (everything but RUN/COPY/ADD; WORKDIR's
 * directory creation is the builder's). Throws StowageError (with the instruction's range) on
 * expansion errors and invalid values.
 */
export function applyMetadataInstruction(state: StageState, instr: Instruction, ctx?: StageContext): MetadataResult {
  try {
    return applyUnlocated(state, instr, ctx);
  } catch (e) {
    if (e instanceof StowageError && e.range === undefined) {
      throw new StowageError(e.code, e.message, { range: instr.range, ...(e.hint ? { hint: e.hint } : {}), cause: e });
    }
    throw e;
  }
}

function applyUnlocated(state: StageState, instr: Instruction, _ctx?: StageContext): MetadataResult {
  const env = expansionEnv(state);
  const opts = { escape: state.escape ?? '\\' };
  const word = (w: string) => expandWord(w, env, opts);
  const withConfig = (patch: Partial<ContainerConfig>, extra: Partial<StageState> = {}): StageState => ({
    ...state,
    ...extra,
    config: { ...state.config, ...patch },
  });
  switch (instr.kind) {
    case 'env': {
      const next = state.env.map(([k, v]) => [k, v] as [string, string]);
      const parts: string[] = [];
      for (const p of instr.pairs) {
        const key = word(p.key);
        const value = word(p.value);
        parts.push(`${key}=${value}`);
        const i = next.findIndex(([k]) => k === key);
        if (i >= 0) next[i] = [key, value];
        else next.push([key, value]);
      }
      const Env = next.map(([k, v]) => `${k}=${v}`);
      return { state: withConfig({ Env }, { env: next }), configPatch: { Env }, createdBy: `ENV ${parts.join(' ')}`, emptyLayer: true };
    }
    case 'label': {
      const Labels = { ...(state.config.Labels ?? {}) };
      const parts: string[] = [];
      for (const p of instr.pairs) {
        const key = word(p.key);
        const value = word(p.value);
        Labels[key] = value;
        parts.push(`${key}=${value}`);
      }
      return { state: withConfig({ Labels }), configPatch: { Labels }, createdBy: `LABEL ${parts.join(' ')}`, emptyLayer: true };
    }
    case 'arg': {
      const args = [...state.args];
      const parts: string[] = [];
      for (const a of instr.args) {
        let value: string | undefined;
        if (hasOwn(state.buildArgs, a.key)) value = state.buildArgs[a.key];
        else if (a.value !== undefined) value = expandWord(a.value, env, opts);
        else if (state.globalArgs.has(a.key)) value = state.globalArgs.get(a.key);
        const i = args.findIndex((x) => x.key === a.key);
        const entry: ScopedArg = value === undefined ? { key: a.key } : { key: a.key, value };
        if (i >= 0) args[i] = entry;
        else args.push(entry);
        parts.push(value === undefined ? a.key : `${a.key}=${value}`);
      }
      return { state: { ...state, args }, createdBy: `ARG ${parts.join(' ')}`, emptyLayer: true };
    }
    case 'workdir': {
      const p = word(instr.path);
      const prev = state.config.WorkingDir || '/';
      const WorkingDir = cleanPath(p.startsWith('/') ? p : `${prev}/${p}`);
      return { state: withConfig({ WorkingDir }), configPatch: { WorkingDir }, createdBy: `WORKDIR ${WorkingDir}`, emptyLayer: WorkingDir === '/' };
    }
    case 'user': {
      const User = word(instr.user);
      return { state: withConfig({ User }), configPatch: { User }, createdBy: `USER ${User}`, emptyLayer: true };
    }
    case 'expose': {
      const ExposedPorts: Record<string, Record<string, never>> = { ...(state.config.ExposedPorts ?? {}) };
      const added: string[] = [];
      for (const raw of [...instr.ports].sort()) {
        for (const w of expandWords(raw, env, opts)) {
          for (const p of exposePorts(w)) {
            ExposedPorts[p] = {};
            if (!added.includes(p)) added.push(p);
          }
        }
      }
      return { state: withConfig({ ExposedPorts }), configPatch: { ExposedPorts }, createdBy: `EXPOSE ${goList([...added].sort())}`, emptyLayer: true };
    }
    case 'volume': {
      const Volumes: Record<string, Record<string, never>> = { ...(state.config.Volumes ?? {}) };
      const paths: string[] = [];
      for (const raw of instr.paths) {
        const v = word(raw);
        if (v.trim() === '') throw new StowageError('dockerfile/empty-volume', 'VOLUME specified can not be an empty string');
        Volumes[v] = {};
        paths.push(v);
      }
      return { state: withConfig({ Volumes }), configPatch: { Volumes }, createdBy: `VOLUME ${goList(paths)}`, emptyLayer: true };
    }
    case 'cmd': {
      const Cmd = commandArgv(instr.command, state);
      return {
        state: withConfig({ Cmd, ArgsEscaped: true }, { cmdSetInStage: true }),
        configPatch: { Cmd, ArgsEscaped: true },
        createdBy: `CMD ${goQuotedList(Cmd)}`,
        emptyLayer: true,
      };
    }
    case 'entrypoint': {
      const argv = commandArgv(instr.command, state);
      const Entrypoint = argv.length === 0 ? null : argv;
      const patch: Partial<ContainerConfig> = { Entrypoint };
      if (!state.cmdSetInStage) patch.Cmd = null;
      return { state: withConfig(patch), configPatch: patch, createdBy: `ENTRYPOINT ${goQuotedList(argv)}`, emptyLayer: true };
    }
    case 'shell': {
      const Shell = [...instr.shell];
      return { state: withConfig({ Shell }), configPatch: { Shell }, createdBy: `SHELL ${goList(Shell)}`, emptyLayer: true };
    }
    case 'stopsignal': {
      const StopSignal = word(instr.signal);
      if (!isValidSignal(StopSignal)) throw new StowageError('dockerfile/bad-signal', `Invalid signal: ${StopSignal}`, { hint: 'use a name like SIGTERM or a number' });
      return { state: withConfig({ StopSignal }), configPatch: { StopSignal }, createdBy: `STOPSIGNAL ${StopSignal}`, emptyLayer: true };
    }
    case 'healthcheck': {
      const h = instr.health;
      const Healthcheck: HealthConfig =
        h.type === 'none'
          ? { Test: ['NONE'] }
          : { Test: [...h.test], Interval: h.interval, Timeout: h.timeout, StartPeriod: h.startPeriod, StartInterval: h.startInterval, Retries: h.retries };
      return { state: withConfig({ Healthcheck }), configPatch: { Healthcheck }, createdBy: `HEALTHCHECK ${healthString(Healthcheck)}`, emptyLayer: true };
    }
    case 'onbuild': {
      const OnBuild = [...(state.config.OnBuild ?? []), instr.expression];
      return { state: withConfig({ OnBuild }), configPatch: { OnBuild } };
    }
    case 'maintainer': {
      return { state, author: instr.maintainer, createdBy: `MAINTAINER ${instr.maintainer}`, emptyLayer: true };
    }
    case 'from':
    case 'run':
    case 'copy':
    case 'add':
      throw new StowageError('dockerfile/not-metadata', `${instr.keyword.toUpperCase()} is not a metadata instruction`);
    default: {
      const never: never = instr;
      throw new Error(`unexpected instruction ${JSON.stringify(never)}`);
    }
  }
}

/** The argv a RUN executes (A3, A4): exec form as is; shell form through the current SHELL. */
export function runArgv(instr: RunInstruction, state: StageState): string[] {
  if (instr.command.form === 'exec') return [...instr.command.argv];
  const script = runHeredocScript(instr);
  if (script !== undefined) return [...shellOf(state), `/dev/pipes/${script.name}`];
  return [...shellOf(state), runShellText(instr)];
}

function singleWholeHeredoc(instr: RunInstruction): HeredocSpec | undefined {
  if (instr.command.form !== 'shell' || instr.heredocs.length !== 1) return undefined;
  let word;
  try {
    word = parseHeredocWord(instr.command.command.trim());
  } catch {
    return undefined;
  }
  const only = instr.heredocs[0];
  return word !== undefined && only !== undefined && word.name === only.name ? only : undefined;
}

/**
 * A3 case 1: one heredoc that is the whole command with a `#!` body runs as a script file
 * (`/dev/pipes/<name>`, mode 0755, read-only); the builder writes it.
 */
export function runHeredocScript(instr: RunInstruction): { name: string; body: string } | undefined {
  const only = singleWholeHeredoc(instr);
  return only !== undefined && only.body.startsWith('#!') ? { name: only.name, body: only.body } : undefined;
}

/**
 * Shell-form RUN text with heredocs: a single heredoc that is the whole command becomes its body
 * (case 2); otherwise the line plus each body and terminator goes to the shell (case 3).
 */
export function runShellText(instr: RunInstruction): string {
  if (instr.command.form === 'exec') return instr.command.argv.join(' ');
  const cmd = instr.command.command;
  if (instr.heredocs.length === 0) return cmd;
  const only = singleWholeHeredoc(instr);
  if (only !== undefined && !only.body.startsWith('#!')) return only.body;
  let text = cmd;
  for (const h of instr.heredocs) text += '\n' + h.body + h.name;
  return text;
}

/** History `created_by` for RUN/COPY/ADD (A10, A23). */
export function historyFor(instr: RunInstruction | CopyInstruction | AddInstruction, state: StageState): string {
  if (instr.kind === 'run') {
    const argv = runArgv(instr, state);
    const env = new Map<string, string>();
    for (const [k, v] of state.env) env.set(k, v);
    const parts: string[] = [];
    const index = new Map<string, number>();
    for (const a of state.args) {
      const v = env.get(a.key) ?? a.value ?? '';
      const kv = `${a.key}=${v}`;
      const i = index.get(a.key);
      if (i !== undefined) parts[i] = kv;
      else {
        index.set(a.key, parts.length);
        parts.push(kv);
      }
    }
    const prefix = parts.length > 0 ? [`|${parts.length}`, ...parts] : [];
    return `RUN ${[...prefix, ...argv].join(' ')} # buildkit`;
  }
  const env = expansionEnv(state);
  const x = (w: string) => expandWord(w, env, { escape: state.escape ?? '\\' });
  let msg = instr.kind === 'copy' ? 'COPY' : 'ADD';
  if (instr.kind === 'copy' && instr.parents) msg += ' --parents';
  if (instr.chown) msg += ` --chown=${x(instr.chown)}`;
  if (instr.chmod) msg += ` --chmod=${x(instr.chmod)}`;
  for (const s of instr.sources) msg += ' ' + x(s);
  for (const h of instr.heredocs) msg += ' <<' + h.name;
  msg += ' ' + x(instr.dest);
  return `${msg} # buildkit`;
}

/**
 * The RUN's `--mount`s as the builder should use them: each value expanded with the stage env and
 * validated (A5, A21), relative targets joined to WORKDIR, BuildKit's defaults filled in.
 * Throws StowageError (`dockerfile/bad-mount`) with the instruction's range.
 */
export function resolveRunMounts(instr: RunInstruction, state: StageState): MountSpec[] {
  const env = expansionEnv(state);
  const opts = { escape: state.escape ?? '\\' };
  const workdir = state.config.WorkingDir || '/';
  let ssh = 0;
  return instr.mounts.map((m) => {
    let parsed: MountSpec;
    try {
      parsed = parseMount(m.raw, (v) => expandWord(v, env, opts));
    } catch (e) {
      if (e instanceof InstructionError) throw new StowageError(e.code, e.message, { range: instr.range, ...(e.hint ? { hint: e.hint } : {}) });
      if (e instanceof StowageError) throw new StowageError(e.code, e.message, { range: instr.range });
      throw e;
    }
    const out = withMountDefaults(parsed, { workdir, sshIndex: ssh });
    if (out.type === 'ssh') ssh++;
    return out;
  });
}
