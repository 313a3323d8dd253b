import type { RawNode } from '../ast.js';
import type { CmdInstruction } from '../types.js';
import { base, commandLine, noFlags } from './common.js';

export function parseCmd(node: RawNode): CmdInstruction {
  noFlags(node);
  return { kind: 'cmd', ...base(node), command: commandLine(node) };
}
