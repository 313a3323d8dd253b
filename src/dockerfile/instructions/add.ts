import type { RawNode } from '../ast.js';
import type { AddInstruction } from '../types.js';
import { base, parseFlags } from './common.js';
import { sourcesAndDest } from './sources.js';

/** `ADD [--chown] [--chmod] [--link] [--keep-git-dir] [--checksum] [--unpack] [--exclude]… src… dest` (A10). */
export function parseAdd(node: RawNode): AddInstruction {
  const flags = parseFlags(node.flags, {
    chown: 'string',
    chmod: 'string',
    link: 'bool',
    'keep-git-dir': 'bool',
    checksum: 'string',
    unpack: 'bool',
    exclude: 'strings',
  });
  const sd = sourcesAndDest(node, 'ADD');
  const out: AddInstruction = { kind: 'add', ...base(node), ...sd, exclude: flags.strings('exclude') };
  const chown = flags.string('chown');
  if (chown !== undefined) out.chown = chown;
  const chmod = flags.string('chmod');
  if (chmod !== undefined) out.chmod = chmod;
  const link = flags.bool('link');
  if (link !== undefined) out.link = link;
  const keep = flags.bool('keep-git-dir');
  if (keep !== undefined) out.keepGitDir = keep;
  const checksum = flags.string('checksum');
  if (checksum !== undefined) out.checksum = checksum;
  const unpack = flags.bool('unpack');
  if (unpack !== undefined) out.unpack = unpack;
  return out;
}
