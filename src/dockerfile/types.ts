/**
 * The typed Dockerfile model the rest of stowage builds on. Values are as written (unexpanded):
 * expansion depends on the stage environment and happens in stage-env.ts / the builder.
 */
import type { SourceRange } from '../util/errors.js';

export interface Directives {
  /** `\` (default) or `` ` ``. */
  escape: string;
  syntax?: string;
  /** Raw `# check=` value, e.g. `skip=JSONArgsRecommended;error=true`. */
  check?: string;
}

/** A here-document attached to RUN/COPY/ADD. */
export interface HeredocSpec {
  name: string;
  /** The body lines as written, each ending in `\n`; tabs already stripped when `chomp`. */
  body: string;
  /** Expand variables in the body (COPY/ADD; RUN leaves it to the shell). False when the name was quoted. */
  expand: boolean;
  /** `<<-`. */
  chomp: boolean;
  /** File descriptor (`3<<EOF`), 0 when not given. */
  fd: number;
}

interface InstructionBase {
  /** Keyword as written (original casing), e.g. `Run`. */
  keyword: string;
  range: SourceRange;
  /** The logical line (continuations joined), as BuildKit keeps it for history. */
  original: string;
  /** The `--flag[=value]` words as written (quotes removed). */
  flags: string[];
}

export type CommandLine = { form: 'shell'; command: string } | { form: 'exec'; argv: string[] };

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

/** One `RUN --mount=` (DOCKERFILE.md A21), values unexpanded unless parsed with an expander. */
export interface MountSpec {
  /** The flag value as written. */
  raw: string;
  type: MountType;
  from?: string;
  source?: string;
  target?: string;
  readOnly: boolean;
  required?: boolean;
  /** tmpfs size limit in bytes. */
  size?: number;
  /** cache id / secret id / ssh id. */
  id?: string;
  sharing?: CacheSharing;
  mode?: number;
  uid?: number;
  gid?: number;
  /** secret: expose as this environment variable. */
  env?: string;
}

export interface FromInstruction extends InstructionBase {
  kind: 'from';
  /** Base image reference or stage name, as written (may contain `$ARG`). */
  image: string;
  /** Stage name, lowercased. */
  name?: string;
  /** The `AS` keyword as written (for FromAsCasing). */
  asKeyword?: string;
  /** The stage name as written (for StageNameCasing). */
  nameAsWritten?: string;
  platform?: string;
}

export interface RunInstruction extends InstructionBase {
  kind: 'run';
  command: CommandLine;
  heredocs: HeredocSpec[];
  mounts: MountSpec[];
  network?: 'default' | 'none' | 'host';
  security?: 'sandbox' | 'insecure';
  devices: string[];
}

interface CopyLike extends InstructionBase {
  /** Source paths as written (not heredocs). */
  sources: string[];
  /** Heredoc sources (`COPY <<EOF /dest`). */
  heredocs: HeredocSpec[];
  dest: string;
  /** Sources came from a JSON array. */
  json: boolean;
  chown?: string;
  chmod?: string;
  link?: boolean;
  exclude: string[];
}

export interface CopyInstruction extends CopyLike {
  kind: 'copy';
  from?: string;
  parents?: boolean;
}

export interface AddInstruction extends CopyLike {
  kind: 'add';
  keepGitDir?: boolean;
  checksum?: string;
  unpack?: boolean;
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface EnvInstruction extends InstructionBase {
  kind: 'env';
  pairs: KeyValue[];
  /** `ENV key value` form. */
  legacy: boolean;
}

export interface LabelInstruction extends InstructionBase {
  kind: 'label';
  pairs: KeyValue[];
  legacy: boolean;
}

export interface ArgInstruction extends InstructionBase {
  kind: 'arg';
  /** `value` undefined: declared without a default. */
  args: { key: string; value?: string }[];
}

export interface WorkdirInstruction extends InstructionBase {
  kind: 'workdir';
  path: string;
}

export interface UserInstruction extends InstructionBase {
  kind: 'user';
  user: string;
}

export interface ExposeInstruction extends InstructionBase {
  kind: 'expose';
  ports: string[];
}

export interface VolumeInstruction extends InstructionBase {
  kind: 'volume';
  paths: string[];
  json: boolean;
}

export interface CmdInstruction extends InstructionBase {
  kind: 'cmd';
  command: CommandLine;
}

export interface EntrypointInstruction extends InstructionBase {
  kind: 'entrypoint';
  command: CommandLine;
}

export interface ShellInstruction extends InstructionBase {
  kind: 'shell';
  shell: string[];
}

export interface StopsignalInstruction extends InstructionBase {
  kind: 'stopsignal';
  signal: string;
}

/** HEALTHCHECK per A16: durations in nanoseconds, 0 = unset. */
export type HealthcheckSpec =
  | { type: 'none' }
  | {
      type: 'cmd';
      /** `["CMD", ...]` or `["CMD-SHELL", cmd]`. */
      test: string[];
      interval: number;
      timeout: number;
      startPeriod: number;
      startInterval: number;
      retries: number;
    };

export interface HealthcheckInstruction extends InstructionBase {
  kind: 'healthcheck';
  health: HealthcheckSpec;
}

export interface OnbuildInstruction extends InstructionBase {
  kind: 'onbuild';
  /** The nested instruction, parsed and validated. */
  trigger: Instruction;
  /** The stored trigger text: original minus `ONBUILD`, heredocs re-attached. */
  expression: string;
}

export interface MaintainerInstruction extends InstructionBase {
  kind: 'maintainer';
  maintainer: string;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CopyInstruction
  | AddInstruction
  | EnvInstruction
  | ArgInstruction
  | LabelInstruction
  | WorkdirInstruction
  | UserInstruction
  | ExposeInstruction
  | VolumeInstruction
  | CmdInstruction
  | EntrypointInstruction
  | ShellInstruction
  | StopsignalInstruction
  | HealthcheckInstruction
  | OnbuildInstruction
  | MaintainerInstruction;

export type InstructionKind = Instruction['kind'];

export interface Stage {
  index: number;
  /** Lowercased stage name. */
  name?: string;
  from: FromInstruction;
  /** Everything after FROM up to the next FROM. */
  instructions: Instruction[];
  range: SourceRange;
}

export interface Dockerfile {
  directives: Directives;
  /** ARGs before the first FROM. */
  metaArgs: ArgInstruction[];
  stages: Stage[];
}

export interface ParseResult {
  dockerfile?: Dockerfile;
  diagnostics: import('../util/errors.js').Diagnostic[];
}
