import type { RawNode } from '../ast.js';
import type { CopyInstruction, HeredocSpec } from '../types.js';
import { base, InstructionError, parseFlags } from './common.js';
import { copyLikeFlags, sourcesAndDest } from './sources.js';

/** `COPY [--from] [--chown] [--chmod] [--link] [--parents] [--exclude]… src… dest` (A10). */
export function parseCopy(node: RawNode): CopyInstruction {
  const flags = parseFlags(node.flags, {
    chown: 'string',
    from: 'string',
    chmod: 'string',
    link: 'bool',
    parents: 'bool',
    exclude: 'strings',
    checksum: 'string',
  });
  if (flags.string('checksum') !== undefined) throw new InstructionError("checksum can't be specified for COPY", 'dockerfile/bad-flag');
  const sd = sourcesAndDest(node, 'COPY');
  for (const s of sd.sources) {
    if (/^https?:\/\//i.test(s)) throw new InstructionError('source can\'t be a URL for COPY', 'dockerfile/copy-url', 'use ADD to download a URL');
  }
  const out: CopyInstruction = { kind: 'copy', ...base(node), ...sd, ...copyLikeFlags(flags), exclude: flags.strings('exclude') };
  const from = flags.string('from');
  if (from !== undefined) out.from = from;
  const parents = flags.bool('parents');
  if (parents !== undefined) out.parents = parents;
  return out;
}

export type { HeredocSpec };
