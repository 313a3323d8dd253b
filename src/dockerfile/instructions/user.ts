import type { RawNode } from '../ast.js';
import type { UserInstruction } from '../types.js';
import { base, exactlyOne, noFlags } from './common.js';

export function parseUser(node: RawNode): UserInstruction {
  const user = exactlyOne(node);
  noFlags(node);
  return { kind: 'user', ...base(node), user };
}
