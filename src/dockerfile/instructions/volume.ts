import type { RawNode } from '../ast.js';
import type { VolumeInstruction } from '../types.js';
import { atLeastOne, base, InstructionError, noFlags } from './common.js';

export function parseVolume(node: RawNode): VolumeInstruction {
  noFlags(node);
  atLeastOne(node);
  for (const v of node.args) {
    if (v.trim() === '') throw new InstructionError('VOLUME specified can not be an empty string', 'dockerfile/empty-volume');
  }
  return { kind: 'volume', ...base(node), paths: [...node.args], json: node.json };
}
