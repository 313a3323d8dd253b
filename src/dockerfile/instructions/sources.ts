import { parseHeredocWord, type RawNode } from '../ast.js';
import type { HeredocSpec } from '../types.js';
import { chompHeredoc, InstructionError, type ParsedFlags } from './common.js';

function heredocName(word: string): string | undefined {
  try {
    return parseHeredocWord(word)?.name;
  } catch {
    return undefined;
  }
}

/** BuildKit parseSourcesAndDest: last word is the destination, heredoc words become inline sources. */
export function sourcesAndDest(node: RawNode, command: string): { sources: string[]; heredocs: HeredocSpec[]; dest: string; json: boolean } {
  if (node.args.length < 2) {
    throw new InstructionError(
      `${command} requires at least two arguments, but only one was provided. Destination could not be determined`,
      'dockerfile/missing-destination',
    );
  }
  const srcs = node.args.slice(0, -1);
  const dest = node.args[node.args.length - 1] as string;
  if (!node.json && heredocName(dest) !== undefined) {
    throw new InstructionError(`${command} cannot accept a heredoc as a destination`, 'dockerfile/heredoc-destination');
  }
  const sources: string[] = [];
  const heredocs: HeredocSpec[] = [];
  for (const src of srcs) {
    const name = node.json ? undefined : heredocName(src);
    const h = name === undefined ? undefined : node.heredocs.find((d) => d.name === name);
    if (name !== undefined) {
      if (h === undefined) {
        heredocs.push({ name, body: '', expand: true, chomp: false, fd: 0 });
        continue;
      }
      heredocs.push({ name: h.name, body: h.chomp ? chompHeredoc(h.content) : h.content, expand: h.expand, chomp: h.chomp, fd: h.fd });
    } else {
      sources.push(src);
    }
  }
  return { sources, heredocs, dest, json: node.json };
}

/** The flags COPY and ADD share (A10), only those given: absent means "not written". */
export function copyLikeFlags(flags: ParsedFlags): { chown?: string; chmod?: string; link?: boolean } {
  const out: { chown?: string; chmod?: string; link?: boolean } = {};
  const chown = flags.string('chown');
  if (chown !== undefined) out.chown = chown;
  const chmod = flags.string('chmod');
  if (chmod !== undefined) out.chmod = chmod;
  const link = flags.bool('link');
  if (link !== undefined) out.link = link;
  return out;
}
