import type { RawNode } from '../ast.js';
import type { FromInstruction } from '../types.js';
import { base, InstructionError, parseFlags } from './common.js';

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

/** `FROM [--platform=p] image [AS name]` (A9). */
export function parseFrom(node: RawNode): FromInstruction {
  const flags = parseFlags(node.flags, { platform: 'string' });
  const args = node.args;
  if (args.length !== 1 && !(args.length === 3 && (args[1] as string).toLowerCase() === 'as')) {
    throw new InstructionError('FROM requires either one or three arguments', 'dockerfile/bad-from');
  }
  const out: FromInstruction = { kind: 'from', ...base(node), image: args[0] as string };
  if (args.length === 3) {
    const written = args[2] as string;
    const name = written.toLowerCase();
    if (!STAGE_NAME.test(name)) {
      throw new InstructionError(
        `invalid name for build stage: "${written}", name can't start with a number or contain symbols`,
        'dockerfile/bad-stage-name',
      );
    }
    out.name = name;
    out.nameAsWritten = written;
    out.asKeyword = args[1] as string;
  }
  const platform = flags.string('platform');
  if (platform !== undefined) out.platform = platform;
  return out;
}
