/**
 * `COPY --chmod`: octal (0–07777) or symbolic chmod syntax (Dockerfile 1.14+: `u=rwX,go=rX`, `+x`).
 * Parsed once into a pure function from a file's current mode to its new one.
 */
import { StowageError } from '../../util/errors.js';

/** Maps the source mode (permission bits 07777) to the copied entry's mode. */
export type ChmodFn = (mode: number, isDir: boolean) => number;

interface Clause {
  who: number; // mask of affected bits
  ops: { op: '+' | '-' | '='; perm: string }[];
}

const WHO_BITS: Record<string, number> = { u: 0o4700, g: 0o2070, o: 0o1007, a: 0o7777 };

export function invalidChmod(value: string): StowageError {
  return new StowageError(
    'copy/invalid-chmod',
    `invalid chmod parameter: ${value}. it should be octal string and between 0 and 07777`,
    { hint: 'use an octal mode like 0755 or symbolic modes like u=rwX,go=rX' },
  );
}

export function parseChmod(value: string): ChmodFn {
  if (/^[0-7]+$/.test(value)) {
    const n = parseInt(value, 8);
    if (n > 0o7777) throw invalidChmod(value);
    return () => n;
  }
  const clauses: Clause[] = [];
  for (const part of value.split(',')) {
    const m = /^([ugoa]*)((?:[-+=][rwxXstugo]*)+)$/.exec(part);
    if (!m) throw invalidChmod(value);
    let who = 0;
    for (const w of m[1]!) who |= WHO_BITS[w]!;
    if (who === 0) who = WHO_BITS.a!;
    const ops: Clause['ops'] = [];
    for (const om of m[2]!.matchAll(/([-+=])([rwxXstugo]*)/g)) {
      const perm = om[2]!;
      // A copy-from-class (`g=u`) cannot be mixed with letters.
      if (/[ugo]/.test(perm) && perm.length !== 1) throw invalidChmod(value);
      ops.push({ op: om[1] as '+' | '-' | '=', perm });
    }
    clauses.push({ who, ops });
  }
  return (mode, isDir) => {
    let cur = mode & 0o7777;
    for (const c of clauses) {
      for (const { op, perm } of c.ops) {
        const bits = permBits(perm, cur, isDir) & c.who;
        switch (op) {
          case '+':
            cur |= bits;
            break;
          case '-':
            cur &= ~bits;
            break;
          case '=':
            // Clears every bit of the named classes (their setuid/setgid/sticky bit included), then sets.
            cur = (cur & ~c.who) | bits;
            break;
        }
      }
    }
    return cur;
  };
}

function permBits(perm: string, cur: number, isDir: boolean): number {
  if (perm === 'u' || perm === 'g' || perm === 'o') {
    const shift = perm === 'u' ? 6 : perm === 'g' ? 3 : 0;
    const v = (cur >> shift) & 0o7;
    return (v << 6) | (v << 3) | v;
  }
  let bits = 0;
  for (const ch of perm) {
    switch (ch) {
      case 'r':
        bits |= 0o444;
        break;
      case 'w':
        bits |= 0o222;
        break;
      case 'x':
        bits |= 0o111;
        break;
      case 'X':
        if (isDir || (cur & 0o111) !== 0) bits |= 0o111;
        break;
      case 's':
        bits |= 0o6000;
        break;
      case 't':
        bits |= 0o1000;
        break;
      default:
        break;
    }
  }
  return bits;
}
