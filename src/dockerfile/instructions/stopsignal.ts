import type { RawNode } from '../ast.js';
import type { StopsignalInstruction } from '../types.js';
import { base, exactlyOne } from './common.js';

/** Flags are split off by the parser but never validated by BuildKit (A5), so none are checked here. */
export function parseStopsignal(node: RawNode): StopsignalInstruction {
  return { kind: 'stopsignal', ...base(node), signal: exactlyOne(node) };
}
