import type { RawNode } from '../ast.js';
import type { MaintainerInstruction } from '../types.js';
import { base, exactlyOne, noFlags } from './common.js';

export function parseMaintainer(node: RawNode): MaintainerInstruction {
  const maintainer = exactlyOne(node);
  noFlags(node);
  return { kind: 'maintainer', ...base(node), maintainer };
}
