/**
 * Path helpers with Go semantics, because Dockerfile paths and patterns are specified by what
 * Go's `path.Clean` and `filepath.Match` do (DOCKERFILE.md A10/A11). Pure functions, '/' only.
 */
import { StowageError } from '../../util/errors.js';

/** Go's `path.Clean`: lexical normalisation; '' becomes '.'. */
export function goClean(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return '/' + joined;
  return joined === '' ? '.' : joined;
}

/**
 * A path as named in the source of a COPY: relative to the source root, `..` and a leading `/`
 * cleaned away (`COPY ../x` means `x`), trailing `/` ignored. '.' is the root itself.
 */
export function cleanSourcePath(p: string): string {
  const c = goClean('/' + p);
  return c === '/' ? '.' : c.slice(1);
}

/** True if one path component holds Go wildcard syntax (a `\` escapes the next byte). */
export function containsWildcards(component: string): boolean {
  for (let i = 0; i < component.length; i++) {
    const ch = component[i];
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}

/** Removes Go-pattern escapes from a component that holds no wildcards (`a\*b` names `a*b`). */
export function unescapeLiteral(component: string): string {
  return component.replace(/\\(.)/g, '$1');
}

class BadPattern extends Error {}

/**
 * Go's `filepath.Match` on Unix: `*` and `?` never match '/', `[...]` classes with ranges and `^`
 * negation, `\` escapes. Throws StowageError `context/bad-pattern` for malformed patterns.
 */
export function goMatch(pattern: string, name: string): boolean {
  try {
    return matchImpl(Array.from(pattern), Array.from(name));
  } catch (e) {
    if (e instanceof BadPattern) {
      throw new StowageError('context/bad-pattern', `syntax error in pattern "${pattern}"`, {
        hint: 'check the brackets and escapes; write [[] for a literal "["',
      });
    }
    throw e;
  }
}

/** Whether `pattern` is a syntactically valid Go pattern. */
export function isValidPattern(pattern: string): boolean {
  try {
    // What moby/patternmatcher does: Match against "." surfaces syntax errors.
    matchImpl(Array.from(pattern), ['.']);
    return true;
  } catch (e) {
    if (e instanceof BadPattern) return false;
    throw e;
  }
}

function scanChunk(pattern: string[]): { star: boolean; chunk: string[]; rest: string[] } {
  let star = false;
  let p = pattern;
  while (p.length > 0 && p[0] === '*') {
    p = p.slice(1);
    star = true;
  }
  let inrange = false;
  let i = 0;
  scan: for (; i < p.length; i++) {
    switch (p[i]) {
      case '\\':
        if (i + 1 < p.length) i++;
        break;
      case '[':
        inrange = true;
        break;
      case ']':
        inrange = false;
        break;
      case '*':
        if (!inrange) break scan;
        break;
      default:
        break;
    }
  }
  return { star, chunk: p.slice(0, i), rest: p.slice(i) };
}

function getEsc(chunk: string[]): { r: string; rest: string[] } {
  if (chunk.length === 0 || chunk[0] === '-' || chunk[0] === ']') throw new BadPattern();
  let c = chunk;
  if (c[0] === '\\') {
    c = c.slice(1);
    if (c.length === 0) throw new BadPattern();
  }
  const r = c[0]!;
  const rest = c.slice(1);
  if (rest.length === 0) throw new BadPattern();
  return { r, rest };
}

/** Returns the rest of `s` after matching `chunk` at its start, or undefined. */
function matchChunk(chunkIn: string[], sIn: string[]): string[] | undefined {
  let chunk = chunkIn;
  let s = sIn;
  let failed = false;
  while (chunk.length > 0) {
    if (!failed && s.length === 0) failed = true;
    const c = chunk[0]!;
    if (c === '[') {
      let r = '';
      if (!failed) {
        r = s[0]!;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
      let negated = false;
      if (chunk.length > 0 && chunk[0] === '^') {
        negated = true;
        chunk = chunk.slice(1);
      }
      let match = false;
      let nrange = 0;
      for (;;) {
        if (chunk.length > 0 && chunk[0] === ']' && nrange > 0) {
          chunk = chunk.slice(1);
          break;
        }
        const lo = getEsc(chunk);
        chunk = lo.rest;
        let hi = lo.r;
        if (chunk[0] === '-') {
          const h = getEsc(chunk.slice(1));
          hi = h.r;
          chunk = h.rest;
        }
        const rc = r.codePointAt(0) ?? -1;
        if (lo.r.codePointAt(0)! <= rc && rc <= hi.codePointAt(0)!) match = true;
        nrange++;
      }
      if (match === negated) failed = true;
    } else if (c === '?') {
      if (!failed) {
        if (s[0] === '/') failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    } else {
      let lit = c;
      if (c === '\\') {
        chunk = chunk.slice(1);
        if (chunk.length === 0) throw new BadPattern();
        lit = chunk[0]!;
      }
      if (!failed) {
        if (lit !== s[0]) failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    }
  }
  return failed ? undefined : s;
}

function matchImpl(patternIn: string[], nameIn: string[]): boolean {
  let pattern = patternIn;
  let name = nameIn;
  outer: while (pattern.length > 0) {
    const { star, chunk, rest } = scanChunk(pattern);
    pattern = rest;
    if (star && chunk.length === 0) return !name.includes('/');
    const t = matchChunk(chunk, name);
    if (t !== undefined && (t.length === 0 || pattern.length > 0)) {
      name = t;
      continue;
    }
    if (star) {
      for (let i = 0; i < name.length && name[i] !== '/'; i++) {
        const t2 = matchChunk(chunk, name.slice(i + 1));
        if (t2 !== undefined) {
          if (pattern.length === 0 && t2.length > 0) continue;
          name = t2;
          continue outer;
        }
      }
    }
    // Like Go: before reporting no match, check the rest of the pattern is well-formed.
    while (pattern.length > 0) {
      const sc = scanChunk(pattern);
      pattern = sc.rest;
      matchChunk(sc.chunk, []);
    }
    return false;
  }
  return name.length === 0;
}
