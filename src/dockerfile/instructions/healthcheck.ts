import type { RawNode } from '../ast.js';
import type { HealthcheckInstruction } from '../types.js';
import { base, InstructionError, parseFlags } from './common.js';

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
const MIN_DURATION_NS = 1e6;

/** Go time.ParseDuration, in nanoseconds; undefined when invalid. */
export function parseGoDuration(s: string): number | undefined {
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0;
  while (rest !== '') {
    const m = /^(\d*)(?:\.(\d*))?([^\d.]+)/.exec(rest);
    if (m === null || ((m[1] ?? '') === '' && (m[2] ?? '') === '')) return undefined;
    const unit = UNIT_NS[m[3] as string];
    if (unit === undefined) return undefined;
    total += Number(m[1] || '0') * unit + (m[2] ? Number('0.' + m[2]) * unit : 0);
    rest = rest.slice(m[0].length);
  }
  return sign * Math.round(total);
}

function interval(name: string, value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  const d = parseGoDuration(value);
  if (d === undefined) throw new InstructionError(`time: invalid duration "${value}"`, 'dockerfile/bad-healthcheck');
  if (d === 0) return 0;
  if (d < MIN_DURATION_NS) throw new InstructionError(`Interval "${name}" cannot be less than 1ms`, 'dockerfile/bad-healthcheck');
  return d;
}

/** `HEALTHCHECK [opts] CMD …` or `HEALTHCHECK NONE` (A16). */
export function parseHealthcheck(node: RawNode): HealthcheckInstruction {
  if (node.args.length === 0) throw new InstructionError('HEALTHCHECK requires at least one argument', 'dockerfile/missing-argument');
  const type = (node.args[0] as string).toUpperCase();
  const args = node.args.slice(1);
  if (type === 'NONE') {
    if (args.length !== 0) throw new InstructionError('HEALTHCHECK NONE takes no arguments', 'dockerfile/bad-healthcheck');
    return { kind: 'healthcheck', ...base(node), health: { type: 'none' } };
  }
  const flags = parseFlags(node.flags, {
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  });
  if (type !== 'CMD') {
    throw new InstructionError(`Unknown type "${type}" in HEALTHCHECK (try CMD)`, 'dockerfile/bad-healthcheck');
  }
  const cmd = node.json ? args : args.length > 0 ? [args.join(' ')] : [];
  if (cmd.length === 0) throw new InstructionError('Missing command after HEALTHCHECK CMD', 'dockerfile/bad-healthcheck');
  let retries = 0;
  const r = flags.string('retries');
  if (r !== undefined && r !== '') {
    if (!/^[+-]?\d+$/.test(r) || Math.abs(Number(r)) > 2 ** 31 - 1) {
      throw new InstructionError(`strconv.ParseInt: parsing "${r}": invalid syntax`, 'dockerfile/bad-healthcheck');
    }
    retries = Number(r);
    if (retries < 0) throw new InstructionError(`--retries cannot be negative (${retries})`, 'dockerfile/bad-healthcheck');
  }
  return {
    kind: 'healthcheck',
    ...base(node),
    health: {
      type: 'cmd',
      test: [node.json ? 'CMD' : 'CMD-SHELL', ...cmd],
      interval: interval('interval', flags.string('interval')),
      timeout: interval('timeout', flags.string('timeout')),
      startPeriod: interval('start-period', flags.string('start-period')),
      startInterval: interval('start-interval', flags.string('start-interval')),
      retries,
    },
  };
}
