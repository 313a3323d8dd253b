import type { RawNode } from '../ast.js';
import type { EntrypointInstruction } from '../types.js';
import { base, commandLine, noFlags } from './common.js';

/** `ENTRYPOINT []` is kept as an empty exec form; stage-env turns it into null (emptyAsNil). */
export function parseEntrypoint(node: RawNode): EntrypointInstruction {
  noFlags(node);
  return { kind: 'entrypoint', ...base(node), command: commandLine(node) };
}
