/**
 * Dockerfile text → typed model (DOCKERFILE.md A1–A25). Lines, directives, continuations, heredocs
 * and per-instruction argument splitting come from ast.ts (BuildKit's parser, exact); this module
 * validates each instruction with its own parser under instructions/ and groups them into stages.
 *
 * Never throws on bad input: problems come back as Diagnostics with the instruction's line range.
 */
import type { Diagnostic, SourceRange } from '../util/errors.js';
import { suggest as didYouMean } from './suggest.js';
import { parseRaw, type RawNode, type RawParseResult } from './ast.js';
import { InstructionError } from './instructions/common.js';
import { parseAdd } from './instructions/add.js';
import { parseArg } from './instructions/arg.js';
import { parseCmd } from './instructions/cmd.js';
import { parseCopy } from './instructions/copy.js';
import { parseEntrypoint } from './instructions/entrypoint.js';
import { parseEnv } from './instructions/env.js';
import { parseExpose } from './instructions/expose.js';
import { parseFrom } from './instructions/from.js';
import { parseHealthcheck } from './instructions/healthcheck.js';
import { parseLabel } from './instructions/label.js';
import { parseMaintainer } from './instructions/maintainer.js';
import { parseOnbuild } from './instructions/onbuild.js';
import { parseRun } from './instructions/run.js';
import { parseShell } from './instructions/shell.js';
import { parseStopsignal } from './instructions/stopsignal.js';
import { parseUser } from './instructions/user.js';
import { parseVolume } from './instructions/volume.js';
import { parseWorkdir } from './instructions/workdir.js';
import type { ArgInstruction, Directives, Dockerfile, FromInstruction, Instruction, InstructionKind, ParseResult, Stage } from './types.js';

export type { ParseResult } from './types.js';

export const INSTRUCTION_KINDS: readonly InstructionKind[] = [
  'from',
  'run',
  'copy',
  'add',
  'env',
  'arg',
  'label',
  'workdir',
  'user',
  'expose',
  'volume',
  'cmd',
  'entrypoint',
  'shell',
  'stopsignal',
  'healthcheck',
  'onbuild',
  'maintainer',
];

/** Validate one raw node into its typed instruction. Throws InstructionError. */
export function parseInstruction(node: RawNode): Instruction {
  const kind = node.value as InstructionKind;
  switch (kind) {
    case 'from':
      return parseFrom(node);
    case 'run':
      return parseRun(node);
    case 'copy':
      return parseCopy(node);
    case 'add':
      return parseAdd(node);
    case 'env':
      return parseEnv(node);
    case 'arg':
      return parseArg(node);
    case 'label':
      return parseLabel(node);
    case 'workdir':
      return parseWorkdir(node);
    case 'user':
      return parseUser(node);
    case 'expose':
      return parseExpose(node);
    case 'volume':
      return parseVolume(node);
    case 'cmd':
      return parseCmd(node);
    case 'entrypoint':
      return parseEntrypoint(node);
    case 'shell':
      return parseShell(node);
    case 'stopsignal':
      return parseStopsignal(node);
    case 'healthcheck':
      return parseHealthcheck(node);
    case 'onbuild':
      return parseOnbuild(node, parseInstruction);
    case 'maintainer':
      return parseMaintainer(node);
    default: {
      const s = didYouMean(node.value, INSTRUCTION_KINDS);
      throw new InstructionError(
        `unknown instruction: ${node.keyword.toUpperCase()}${s ? ` (did you mean ${s}?)` : ''}`,
        'dockerfile/unknown-instruction',
        s ? `did you mean ${s.toUpperCase()}?` : undefined,
      );
    }
  }
}

function lineRange(start: number, end: number): SourceRange {
  return { start: { line: start, column: 1 }, end: { line: end, column: 1 } };
}

export function directivesOf(raw: RawParseResult): Directives {
  const d: Directives = { escape: raw.escapeToken };
  for (const p of raw.directives) {
    if (p.name === 'syntax') d.syntax = p.value;
    if (p.name === 'check') d.check = p.value;
  }
  return d;
}

/** Parse a Dockerfile. `dockerfile` is present exactly when there are no error diagnostics. */
export function parseDockerfile(text: string, options: { file: string }): ParseResult {
  if (typeof text !== 'string') {
    return { diagnostics: [{ file: options.file, severity: 'error', code: 'dockerfile/unreadable', message: 'the Dockerfile is not text' }] };
  }
  return parseDockerfileFromRaw(parseRaw(text), options);
}

/**
 * {@link parseDockerfile} from the line-level parse (`parseRaw(text)`), for callers that keep it
 * for the build checks too rather than splitting the text twice.
 */
export function parseDockerfileFromRaw(raw: RawParseResult, options: { file: string }): ParseResult {
  const file = options.file;
  const diagnostics: Diagnostic[] = [];
  if (raw.error !== undefined) {
    diagnostics.push({
      file,
      range: lineRange(raw.error.startLine, raw.error.endLine),
      severity: 'error',
      code: raw.error.code,
      message: raw.error.message,
    });
    return { diagnostics };
  }
  const metaArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  let current: { from: FromInstruction; instructions: Instruction[]; range: SourceRange } | undefined;
  const finish = () => {
    if (current === undefined) return;
    const stage: Stage = { index: stages.length, from: current.from, instructions: current.instructions, range: current.range };
    if (current.from.name !== undefined) stage.name = current.from.name;
    stages.push(stage);
  };
  for (const node of raw.nodes) {
    let instr: Instruction;
    try {
      instr = parseInstruction(node);
    } catch (e) {
      const d: Diagnostic = {
        file,
        range: node.range,
        severity: 'error',
        code: e instanceof InstructionError ? e.code : 'dockerfile/invalid-instruction',
        message: e instanceof Error ? e.message : String(e),
      };
      if (e instanceof InstructionError && e.hint !== undefined) d.hint = e.hint;
      diagnostics.push(d);
      continue;
    }
    if (instr.kind === 'from') {
      finish();
      current = { from: instr, instructions: [], range: { start: instr.range.start, end: instr.range.end } };
      continue;
    }
    if (current === undefined) {
      if (instr.kind === 'arg') {
        metaArgs.push(instr);
        continue;
      }
      diagnostics.push({
        file,
        range: node.range,
        severity: 'error',
        code: 'dockerfile/no-stage',
        message: 'no build stage in current context',
        hint: 'start the Dockerfile with FROM (only ARG may come before the first FROM)',
      });
      continue;
    }
    current.instructions.push(instr);
    current.range = { start: current.range.start, end: instr.range.end };
  }
  finish();
  if (diagnostics.length === 0 && stages.length === 0) {
    const last = raw.nodes[raw.nodes.length - 1];
    diagnostics.push({
      file,
      range: last !== undefined ? last.range : lineRange(1, 1),
      severity: 'error',
      code: 'dockerfile/no-stage',
      message: 'no build stage in current context',
      hint: 'add a FROM instruction',
    });
  }
  if (diagnostics.length > 0) return { diagnostics };
  const dockerfile: Dockerfile = { directives: directivesOf(raw), metaArgs, stages };
  return { dockerfile, diagnostics };
}
