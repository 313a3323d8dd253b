import type { RawNode } from '../ast.js';
import type { LabelInstruction } from '../types.js';
import { base, noFlags } from './common.js';
import { keyValuePairs } from './env.js';

export function parseLabel(node: RawNode): LabelInstruction {
  const kv = keyValuePairs(node, 'LABEL');
  noFlags(node);
  return { kind: 'label', ...base(node), ...kv };
}
