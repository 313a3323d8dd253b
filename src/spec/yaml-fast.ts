/**
 * A fast reader for the plain block YAML that build specs are written in: block maps and lists,
 * one-line plain and quoted scalars, one-line flow lists, comments and blank lines.
 *
 * Why: the full YAML library needs ~0.3 s (mostly cold, unoptimised code) for a 500-image spec,
 * a large share of `stowage lint`. This reader answers the same data and the same node ranges for
 * its subset; for anything else (anchors, tags, block scalars, multi-line scalars, escapes, flow
 * maps, tabs, CRLF, errors of any kind…) it answers `undefined` and the caller uses the library,
 * so every diagnostic still comes from the library. test/spec/yaml-fast.test.ts checks both agree.
 *
 * Ranges follow the library's: `[start, valueEnd, nodeEnd]`, where a scalar's nodeEnd includes the
 * rest of its line (spaces, comment, newline) and a block collection ends where its last value does.
 */

export type FastScalarValue = string | number | boolean | null;
export type FastRange = readonly [number, number, number];

export interface FastScalar {
  kind: 'scalar';
  value: FastScalarValue;
  range: FastRange;
}
export interface FastEntry {
  key: FastScalar;
  value: FastNode;
}
export interface FastMap {
  kind: 'map';
  /** Keyed by the key as text (`String(value)`, as the library's lookups do). */
  entries: Map<string, FastEntry>;
  range: FastRange;
}
export interface FastSeq {
  kind: 'seq';
  items: FastNode[];
  range: FastRange;
}
export type FastNode = FastScalar | FastMap | FastSeq;

export interface FastDocument {
  contents: FastNode;
  /** The plain data (maps are objects whose keys are always data, even `__proto__`). */
  value: unknown;
  /** Offsets where each line starts (0 first), as the library's LineCounter records them. */
  lineStarts: number[];
}

/** Characters whose YAML meaning this reader does not model (tabs, CR, other controls, odd line breaks, BOM). */
const UNSUPPORTED_CHARS = /[\u0000-\u0009\u000b-\u001f\u007f\u0085\u2028\u2029\ufeff]/;
/** Plain scalars that the core schema reads as something other than a string or decimal integer. */
const OTHER_CORE_SCALAR = /^(?:0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+|[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*))$/;
const NULL_SCALAR = /^(?:~|[Nn]ull|NULL)$/;
const TRUE_SCALAR = /^(?:[Tt]rue|TRUE)$/;
const FALSE_SCALAR = /^(?:[Ff]alse|FALSE)$/;
const INT_SCALAR = /^[-+]?[0-9]+$/;
/** Deeper nesting goes to the library, which reports it against its own limit. */
const MAX_FAST_DEPTH = 32;

/** Thrown inside the reader to give up; never escapes `parseFastYaml`. */
class Unsupported {}
const UNSUPPORTED = new Unsupported();

function unsupported(): never {
  throw UNSUPPORTED;
}

/** The core schema's reading of a plain scalar, or a throw when it is not one this reader models. */
function resolvePlain(s: string): FastScalarValue {
  const c = s.charCodeAt(0);
  // Only text starting with a digit, sign, dot, ~ or a letter of null/true/false can be a non-string.
  if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46) {
    if (INT_SCALAR.test(s)) return parseInt(s, 10);
    if (OTHER_CORE_SCALAR.test(s)) unsupported();
    return s;
  }
  if (c === 126 || c === 110 || c === 78) return NULL_SCALAR.test(s) ? null : s;
  if (c === 116 || c === 84) return TRUE_SCALAR.test(s) ? true : s;
  if (c === 102 || c === 70) return FALSE_SCALAR.test(s) ? false : s;
  return s;
}

/** May a plain scalar start at `i`? (YAML's indicator characters may not, except `-` before a non-space.) */
function plainStartOk(text: string, i: number, end: number): boolean {
  switch (text[i]) {
    case '-': {
      const next = i + 1 < end ? text[i + 1]! : ' ';
      return next !== ' ' && next !== ',' && next !== '[' && next !== ']' && next !== '{' && next !== '}';
    }
    case '?': case ':': case ',': case '[': case ']': case '{': case '}': case '#': case '&': case '*':
    case '!': case '|': case '>': case "'": case '"': case '%': case '@': case '`':
      return false;
    default:
      return true;
  }
}

function setData(obj: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty: a key named `__proto__` must stay data, never change the prototype.
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

export function parseFastYaml(text: string): FastDocument | undefined {
  if (UNSUPPORTED_CHARS.test(text)) return undefined;
  try {
    return new FastReader(text).read();
  } catch (e) {
    if (e === UNSUPPORTED) return undefined;
    throw e;
  }
}

interface Parsed {
  node: FastNode;
  data: unknown;
}

class FastReader {
  private readonly lineStarts: number[] = [0];
  private readonly lineEnds: number[] = [];
  /** Index of the first non-space character of each line. */
  private readonly contentStarts: number[] = [];
  private line = 0;

  constructor(private readonly text: string) {
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) {
      this.lineEnds.push(i);
      this.lineStarts.push(i + 1);
    }
    this.lineEnds.push(text.length);
    const lines = this.lineEnds.length;
    for (let l = 0; l < lines; l++) {
      const lineStart = this.lineStarts[l]!;
      let c = lineStart;
      while (text.charCodeAt(c) === 32) c++;
      this.contentStarts.push(c);
      // A document marker on any line (`---`, `...`) starts or ends a document: also the library's.
      if (c === lineStart && (text.startsWith('---', c) || text.startsWith('...', c))) {
        const after = text.charCodeAt(c + 3);
        if (Number.isNaN(after) || after === 32 || after === 10) unsupported();
      }
    }
    // An indented comment line after the last entry of a collection stretches the ranges of the
    // nodes before it, by rules of its own (its indent against theirs, blank lines): the library's
    // business. Between entries (the next content is indented at least as far) it changes nothing.
    let nextContentIndent = -1; // of the next line with content below the current one; -1: none
    for (let l = lines - 1; l >= 0; l--) {
      const c = this.contentStarts[l]!;
      if (c >= this.lineEnds[l]!) continue; // blank
      const indent = c - this.lineStarts[l]!;
      if (text.charCodeAt(c) === 35) {
        if (indent > 0 && nextContentIndent < indent) unsupported();
        continue;
      }
      nextContentIndent = indent;
    }
  }

  read(): FastDocument {
    const lines = this.lineEnds.length;
    this.skipToContent();
    if (this.line >= lines) unsupported();
    const first = this.contentStarts[this.line]!;
    // `---`, `...` and `%` directives start a document or end one: the library's business.
    if (this.text.startsWith('---', first) || this.text.startsWith('...', first) || this.text[first] === '%') unsupported();
    const top = this.block(this.indentOf(this.line), 1);
    this.skipToContent();
    if (this.line < lines) unsupported();
    // The library leaves no line start behind the final newline only when there is none.
    return { contents: top.node, value: top.data, lineStarts: this.lineStarts };
  }

  private indentOf(line: number): number {
    return this.contentStarts[line]! - this.lineStarts[line]!;
  }

  /** Moves to the next line with content (not blank, not only a comment). */
  private skipToContent(): void {
    const lines = this.lineEnds.length;
    while (this.line < lines) {
      const c = this.contentStarts[this.line]!;
      if (c < this.lineEnds[this.line]! && this.text[c] !== '#') return;
      this.line++;
    }
  }

  private isDash(line: number): boolean {
    const c = this.contentStarts[line]!;
    return this.text[c] === '-' && (c + 1 === this.lineEnds[line] || this.text[c + 1] === ' ');
  }

  private nodeEndOf(line: number): number {
    const end = this.lineEnds[line]!;
    return end < this.text.length ? end + 1 : end;
  }

  private block(indent: number, depth: number): Parsed {
    if (depth > MAX_FAST_DEPTH) unsupported();
    return this.isDash(this.line) ? this.seq(indent, depth) : this.map(indent, depth);
  }

  private map(indent: number, depth: number): Parsed {
    const { text } = this;
    const lines = this.lineEnds.length;
    const entries = new Map<string, FastEntry>();
    const data: Record<string, unknown> = {};
    let start = -1;
    let end = -1;
    for (;;) {
      this.skipToContent();
      if (this.line >= lines) break;
      const ind = this.indentOf(this.line);
      if (ind < indent) break;
      if (ind > indent) unsupported();
      const line = this.line;
      const c = this.contentStarts[line]!;
      const lineEnd = this.lineEnds[line]!;
      if (this.isDash(line)) {
        // A list item where a key belongs: only the library can say what is wrong.
        unsupported();
      }
      // --- key
      let key: FastScalar;
      let colon: number;
      if (text[c] === '"' || text[c] === "'") {
        const q = this.quoted(c, lineEnd);
        key = { kind: 'scalar', value: q.value, range: [c, q.after, q.after] };
        colon = q.after;
        if (text[colon] !== ':') unsupported();
      } else {
        if (!plainStartOk(text, c, lineEnd)) unsupported();
        colon = text.indexOf(':', c);
        while (colon >= 0 && colon < lineEnd && colon + 1 < lineEnd && text[colon + 1] !== ' ') colon = text.indexOf(':', colon + 1);
        if (colon < 0 || colon >= lineEnd) unsupported();
        const raw = text.slice(c, colon);
        if (raw.endsWith(' ') || raw.includes(' #')) unsupported();
        key = { kind: 'scalar', value: resolvePlain(raw), range: [c, colon, colon] };
      }
      if (colon + 1 < lineEnd && text[colon + 1] !== ' ') unsupported();
      const keyText = String(key.value);
      if (entries.has(keyText)) unsupported(); // the library path reports duplicate keys
      if (start < 0) start = c;
      // --- value
      let v = colon + 1;
      while (v < lineEnd && text.charCodeAt(v) === 32) v++;
      let value: Parsed;
      if (v === lineEnd || text[v] === '#') {
        this.line = line + 1;
        this.skipToContent();
        const next = this.line < lines ? this.line : -1;
        if (next >= 0 && this.indentOf(next) > indent) value = this.block(this.indentOf(next), depth + 1);
        else if (next >= 0 && this.indentOf(next) === indent && this.isDash(next)) value = this.seq(indent, depth + 1);
        else {
          // `key:  # comment`: where the empty value sits is the library's call.
          if (v !== colon + 1 || v !== lineEnd) unsupported();
          this.line = line + 1;
          value = { node: { kind: 'scalar', value: null, range: [colon + 1, colon + 1, colon + 1] }, data: null };
        }
      } else {
        value = this.inline(v, line, depth + 1);
        this.line = line + 1;
      }
      entries.set(keyText, { key, value: value.node });
      setData(data, keyText, value.data);
      end = value.node.range[2];
    }
    if (start < 0) unsupported();
    return { node: { kind: 'map', entries, range: [start, end, end] }, data };
  }

  private seq(indent: number, depth: number): Parsed {
    const { text } = this;
    const lines = this.lineEnds.length;
    const items: FastNode[] = [];
    const data: unknown[] = [];
    let start = -1;
    let end = -1;
    for (;;) {
      this.skipToContent();
      if (this.line >= lines) break;
      const ind = this.indentOf(this.line);
      if (ind < indent) break;
      if (ind > indent) unsupported();
      const line = this.line;
      if (!this.isDash(line)) break; // a key of the enclosing map, written at the list's indent
      const c = this.contentStarts[line]!;
      const lineEnd = this.lineEnds[line]!;
      if (start < 0) start = c;
      let v = c + 1;
      while (v < lineEnd && text.charCodeAt(v) === 32) v++;
      if (v === lineEnd || text[v] === '#') unsupported(); // an item on the following lines
      const item = this.inline(v, line, depth + 1);
      this.line = line + 1;
      items.push(item.node);
      data.push(item.data);
      end = item.node.range[2];
    }
    if (start < 0) unsupported();
    return { node: { kind: 'seq', items, range: [start, end, end] }, data };
  }

  /** A value written on the rest of `line` from `v`: a scalar or a one-line flow list. */
  private inline(v: number, line: number, depth: number): Parsed {
    const { text } = this;
    const lineEnd = this.lineEnds[line]!;
    const nodeEnd = this.nodeEndOf(line);
    let after: number;
    let node: FastNode;
    let data: unknown;
    const ch = text[v];
    if (ch === '"' || ch === "'") {
      const q = this.quoted(v, lineEnd);
      after = q.after;
      node = { kind: 'scalar', value: q.value, range: [v, after, nodeEnd] };
      data = q.value;
    } else if (ch === '[') {
      if (depth > MAX_FAST_DEPTH) unsupported();
      const f = this.flowSeq(v, lineEnd);
      after = f.after;
      node = { kind: 'seq', items: f.items, range: [v, after, nodeEnd] };
      data = f.data;
    } else if (ch === '{') {
      if (text[v + 1] !== '}') unsupported();
      after = v + 2;
      node = { kind: 'map', entries: new Map(), range: [v, after, nodeEnd] };
      data = {};
    } else {
      if (!plainStartOk(text, v, lineEnd)) unsupported();
      let stop = v;
      while (stop < lineEnd && !(text.charCodeAt(stop) === 35 && text.charCodeAt(stop - 1) === 32)) stop++;
      let e = stop;
      while (e > v && text.charCodeAt(e - 1) === 32) e--;
      const raw = text.slice(v, e);
      // `a: b: c` and `- a: b` are maps (or errors): the library's business.
      if (raw.includes(': ') || raw.endsWith(':')) unsupported();
      const value = resolvePlain(raw);
      return { node: { kind: 'scalar', value, range: [v, e, nodeEnd] }, data: value };
    }
    // After a quoted scalar or a flow list: only spaces, then the end of the line or a comment.
    let k = after;
    while (k < lineEnd && text.charCodeAt(k) === 32) k++;
    if (k < lineEnd && !(text[k] === '#' && k > after)) unsupported();
    return { node, data };
  }

  /** A quoted scalar on one line without escapes other than `''`. */
  private quoted(q: number, lineEnd: number): { value: string; after: number } {
    const { text } = this;
    if (text[q] === '"') {
      const close = text.indexOf('"', q + 1);
      if (close < 0 || close >= lineEnd) unsupported();
      const value = text.slice(q + 1, close);
      if (value.includes('\\')) unsupported();
      return { value, after: close + 1 };
    }
    let i = q + 1;
    for (;;) {
      const close = text.indexOf("'", i);
      if (close < 0 || close >= lineEnd) unsupported();
      if (text[close + 1] === "'") {
        i = close + 2;
        continue;
      }
      return { value: text.slice(q + 1, close).replaceAll("''", "'"), after: close + 1 };
    }
  }

  /** `[a, "b", c]` on one line, scalars only. */
  private flowSeq(open: number, lineEnd: number): { items: FastNode[]; data: unknown[]; after: number } {
    const { text } = this;
    const items: FastNode[] = [];
    const data: unknown[] = [];
    let k = open + 1;
    while (k < lineEnd && text.charCodeAt(k) === 32) k++;
    if (text[k] === ']') return { items, data, after: k + 1 };
    for (;;) {
      while (k < lineEnd && text.charCodeAt(k) === 32) k++;
      if (k >= lineEnd) unsupported();
      const ch = text[k];
      let valueEnd: number;
      let value: FastScalarValue;
      const start = k;
      if (ch === '"' || ch === "'") {
        const q = this.quoted(k, lineEnd);
        value = q.value;
        valueEnd = q.after;
      } else {
        if (!plainStartOk(text, k, lineEnd)) unsupported();
        let e = k;
        while (e < lineEnd && text[e] !== ',' && text[e] !== ']') e++;
        let t = e;
        while (t > k && text.charCodeAt(t - 1) === 32) t--;
        const raw = text.slice(k, t);
        if (/[[\]{}#]|:(?: |$)/.test(raw)) unsupported();
        value = resolvePlain(raw);
        valueEnd = t;
      }
      k = valueEnd;
      while (k < lineEnd && text.charCodeAt(k) === 32) k++;
      items.push({ kind: 'scalar', value, range: [start, valueEnd, k] });
      data.push(value);
      if (text[k] === ']') return { items, data, after: k + 1 };
      if (text[k] !== ',') unsupported();
      k++;
      while (k < lineEnd && text.charCodeAt(k) === 32) k++;
      if (text[k] === ']') unsupported(); // a trailing comma
    }
  }
}
