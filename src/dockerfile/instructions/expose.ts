import type { RawNode } from '../ast.js';
import type { ExposeInstruction } from '../types.js';
import { atLeastOne, base, noFlags } from './common.js';

export function parseExpose(node: RawNode): ExposeInstruction {
  atLeastOne(node);
  noFlags(node);
  return { kind: 'expose', ...base(node), ports: [...node.args] };
}
