import type { RawNode } from '../ast.js';
import type { WorkdirInstruction } from '../types.js';
import { base, exactlyOne, noFlags } from './common.js';

export function parseWorkdir(node: RawNode): WorkdirInstruction {
  const path = exactlyOne(node);
  noFlags(node);
  return { kind: 'workdir', ...base(node), path };
}
