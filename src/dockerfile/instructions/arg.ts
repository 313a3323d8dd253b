import type { RawNode } from '../ast.js';
import type { ArgInstruction } from '../types.js';
import { atLeastOne, base, InstructionError, noFlags } from './common.js';

/** `ARG name[=default] …` (A7). Words keep their quotes; the default is lexed at build time. */
export function parseArg(node: RawNode): ArgInstruction {
  atLeastOne(node);
  noFlags(node);
  const args = node.args.map((word) => {
    const eq = word.indexOf('=');
    if (eq < 0) return { key: word };
    if (eq === 0) throw new InstructionError('ARG names can not be blank', 'dockerfile/syntax');
    return { key: word.slice(0, eq), value: word.slice(eq + 1) };
  });
  return { kind: 'arg', ...base(node), args };
}
