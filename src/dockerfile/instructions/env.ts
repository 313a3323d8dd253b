import type { RawNode } from '../ast.js';
import type { EnvInstruction, KeyValue } from '../types.js';
import { base, InstructionError, noFlags } from './common.js';

/** ENV/LABEL key-value triples from the line parser (A8); values are unexpanded. */
export function keyValuePairs(node: RawNode, command: string): { pairs: KeyValue[]; legacy: boolean } {
  if (node.args.length === 0) throw new InstructionError(`${command} requires at least one argument`, 'dockerfile/missing-argument');
  if (node.args.length % 3 !== 0) throw new InstructionError(`Bad input to ${command}, too many arguments`, 'dockerfile/syntax');
  const pairs: KeyValue[] = [];
  let legacy = false;
  for (let i = 0; i < node.args.length; i += 3) {
    const key = node.args[i] as string;
    if (key.length === 0) throw new InstructionError(`${command} names can not be blank`, 'dockerfile/syntax');
    pairs.push({ key, value: node.args[i + 1] as string });
    if (node.args[i + 2] === '') legacy = true;
  }
  return { pairs, legacy };
}

export function parseEnv(node: RawNode): EnvInstruction {
  const kv = keyValuePairs(node, 'ENV');
  noFlags(node);
  return { kind: 'env', ...base(node), ...kv };
}
