import type { RawNode } from '../ast.js';
import type { ShellInstruction } from '../types.js';
import { base, InstructionError, noFlags } from './common.js';

export function parseShell(node: RawNode): ShellInstruction {
  noFlags(node);
  if (node.args.length === 0) throw new InstructionError('SHELL requires at least one argument', 'dockerfile/missing-argument');
  if (!node.json) {
    throw new InstructionError('SHELL requires the arguments to be in JSON form', 'dockerfile/shell-not-json', 'write it as SHELL ["/bin/bash", "-c"]');
  }
  return { kind: 'shell', ...base(node), shell: [...node.args] };
}
