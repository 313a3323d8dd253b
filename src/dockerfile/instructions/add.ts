import type { RawNode } from '../ast.js';
import type { AddInstruction } from '../types.js';
import { base, InstructionError, parseFlags } from './common.js';
import { copyLikeFlags, sourcesAndDest } from './sources.js';

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
  const out: AddInstruction = { kind: 'add', ...base(node), ...sd, ...copyLikeFlags(flags), exclude: flags.strings('exclude') };
  const keep = flags.bool('keep-git-dir');
  if (keep !== undefined) out.keepGitDir = keep;
  const checksum = flags.string('checksum');
  if (checksum !== undefined) {
    if (sd.sources.length + sd.heredocs.length !== 1) {
      throw new InstructionError("checksum can't be specified for multiple sources", 'dockerfile/bad-checksum');
    }
    const src = sd.sources[0];
    if (src === undefined || (!src.includes('$') && !isRemoteSource(src))) {
      throw new InstructionError("checksum can't be specified for non-HTTP(S) sources", 'dockerfile/bad-checksum', 'use --checksum only with an http(s) URL or a git source');
    }
    out.checksum = checksum;
  }
  const unpack = flags.bool('unpack');
  if (unpack !== undefined) out.unpack = unpack;
  return out;
}

/** http(s) URLs and git sources (A10): `https://…`, `git@host:x.git`, `git://…`, `….git[#ref]`. */
export function isRemoteSource(src: string): boolean {
  return /^https?:\/\//i.test(src) || /^git@[^:]+:/.test(src) || /^git:\/\//i.test(src) || /^ssh:\/\//i.test(src);
}
