import type { RawNode } from '../ast.js';
import type { MountSpec, RunInstruction } from '../types.js';
import { atLeastOne, base, commandLine, heredocSpecs, InstructionError, parseFlags } from './common.js';
import { MOUNT_FROM_EXPANSION, parseMount } from './mount.js';

/** `RUN [--mount=…] [--network=…] [--security=…] cmd | ["exec"]` (A4, A21). */
export function parseRun(node: RawNode): RunInstruction {
  const flags = parseFlags(node.flags, { mount: 'strings', network: 'string', security: 'string', device: 'strings' });
  atLeastOne(node);
  const mounts: MountSpec[] = flags.strings('mount').map((raw) => {
    try {
      return parseMount(raw);
    } catch (e) {
      // values with variables are validated once expanded, at build time (resolveRunMounts)
      if (raw.includes('$') && !(e instanceof InstructionError && e.code === MOUNT_FROM_EXPANSION)) return parseMountLenient(raw);
      throw e;
    }
  });
  const out: RunInstruction = {
    kind: 'run',
    ...base(node),
    command: commandLine(node),
    heredocs: node.json ? [] : heredocSpecs(node),
    mounts,
    devices: flags.strings('device'),
  };
  const network = flags.string('network');
  if (network !== undefined) {
    if (network !== 'default' && network !== 'none' && network !== 'host') {
      throw new InstructionError(`unsupported network mode "${network}"`, 'dockerfile/bad-flag', 'use --network=default, none or host');
    }
    out.network = network;
  }
  const security = flags.string('security');
  if (security !== undefined) {
    if (security !== 'sandbox' && security !== 'insecure') {
      throw new InstructionError(`unsupported security mode "${security}"`, 'dockerfile/bad-flag', 'use --security=sandbox or insecure');
    }
    out.security = security;
  }
  return out;
}

/** A mount whose values still hold variables: keep what is certain, validate after expansion. */
function parseMountLenient(raw: string): MountSpec {
  try {
    return parseMount(raw, (v) => (v.includes('$') ? '' : v));
  } catch {
    return { raw, type: 'bind', readOnly: true };
  }
}
