import type { RawNode } from '../ast.js';
import type { Instruction, OnbuildInstruction } from '../types.js';
import { base, InstructionError, noFlags } from './common.js';

/**
 * `ONBUILD <instruction>` (A20). The nested instruction is parsed by `parseNested` (parse.ts's
 * dispatcher) so it gets the same validation as if written directly.
 */
export function parseOnbuild(node: RawNode, parseNested: (n: RawNode) => Instruction): OnbuildInstruction {
  if (node.sub === undefined) throw new InstructionError('ONBUILD requires at least one argument', 'dockerfile/missing-argument');
  noFlags(node);
  const trigger = node.sub.keyword.toUpperCase();
  if (trigger === 'ONBUILD') throw new InstructionError('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed', 'dockerfile/bad-onbuild');
  if (trigger === 'MAINTAINER' || trigger === 'FROM') {
    throw new InstructionError(`${trigger} isn't allowed as an ONBUILD trigger`, 'dockerfile/bad-onbuild');
  }
  let expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
  for (const h of node.heredocs) expression += '\n' + h.content + h.name;
  return { kind: 'onbuild', ...base(node), trigger: parseNested(node.sub), expression };
}
