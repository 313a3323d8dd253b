/**
 * YAML → plain data, keeping a way back from any data path to the source range it came from.
 * We convert nodes ourselves (not `doc.toJS`) so that depth, alias expansion and duplicate keys are
 * bounded and reported as diagnostics instead of stack overflows or multi-second hangs.
 */
import { createRequire } from 'node:module';
import type { Document, Node as YamlNode, Pair, YAMLMap } from 'yaml';
import type { Diagnostic, SourceRange } from '../util/errors.js';
import { parseFastYaml, type FastDocument, type FastNode } from './yaml-fast.js';

export type DataPath = readonly (string | number)[];

export interface Located {
  /** Range of the value node (or of the nearest ancestor that exists). */
  range: SourceRange;
  /** Range of the key, when the value is a map entry. */
  keyRange?: SourceRange;
  /** False when the path did not fully resolve and `range` belongs to an ancestor. */
  exact: boolean;
  /** The raw source text of the value node (scalars only). */
  sourceText?: string;
}

export interface ParsedYaml {
  /** Plain data; undefined when the YAML could not be parsed. */
  value: unknown;
  locate(path: DataPath): Located;
  diagnostics: Diagnostic[];
}

export interface ParseLimits {
  maxDepth: number;
  /** Values produced by expanding aliases (guards against "billion laughs"); file size bounds the rest. */
  maxAliasValues: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = { maxDepth: 64, maxAliasValues: 100_000 };

const WHOLE_FILE: SourceRange = { start: { line: 1, column: 1 }, end: { line: 1, column: 1 } };

export function parseYaml(text: string, file: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): ParsedYaml {
  const fast = parseFastYaml(text);
  return fast ? fromFastDocument(fast, text) : parseYamlWithLibrary(text, file, limits);
}

/** 1-based position of `offset`, answered as the library's LineCounter does. */
function positionIn(lineStarts: readonly number[], offset: number): { line: number; column: number } {
  let low = 0;
  let high = lineStarts.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (lineStarts[mid]! < offset) low = mid + 1;
    else high = mid;
  }
  if (lineStarts[low] === offset) return { line: low + 1, column: 1 };
  return { line: low, column: Math.max(1, offset - lineStarts[low - 1]! + 1) };
}

/** The fast reader's document behind the same `locate` the library path gives. */
function fromFastDocument(doc: FastDocument, text: string): ParsedYaml {
  const rangeOf = (r: readonly number[]): SourceRange => {
    const clamp = (o: number) => Math.max(0, Math.min(o, text.length));
    return { start: positionIn(doc.lineStarts, clamp(r[0]!)), end: positionIn(doc.lineStarts, clamp(r[1]!)) };
  };
  // Walk first, then compute the one answer: normalising a spec locates thousands of paths.
  const located = (node: FastNode, key: FastNode | undefined, isRoot: boolean, exact: boolean): Located =>
    isRoot ? { range: rangeOf(node.range), exact } : { range: rangeOf(node.range), keyRange: key ? rangeOf(key.range) : undefined, exact };
  const locate = (path: DataPath): Located => {
    let node: FastNode = doc.contents;
    let keyNode: FastNode | undefined;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      let next: FastNode | undefined;
      let nextKey: FastNode | undefined;
      if (node.kind === 'map') {
        const entry = node.entries.get(String(seg));
        if (entry) {
          next = entry.value;
          nextKey = entry.key;
        }
      } else if (node.kind === 'seq' && /^\d+$/.test(String(seg))) {
        next = node.items[Number(seg)];
      }
      if (next === undefined) return located(node, keyNode, i === 0, false);
      node = next;
      keyNode = nextKey;
    }
    const best = located(node, keyNode, path.length === 0, true);
    if (node.kind === 'scalar') best.sourceText = text.slice(node.range[0], node.range[1]);
    return best;
  };
  return { value: doc.value, locate, diagnostics: [] };
}

type YamlLibrary = typeof import('yaml');

/** The YAML library, loaded only when the fast reader declines (it is ~60 modules to load). */
function yamlLibrary(): YamlLibrary {
  return createRequire(import.meta.url)('yaml') as YamlLibrary;
}

/** The full YAML library: every construct, and the diagnostics for malformed input. */
export function parseYamlWithLibrary(text: string, file: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): ParsedYaml {
  const { LineCounter, parseDocument, isAlias, isMap, isScalar, isSeq, isPair } = yamlLibrary();
  const lineCounter = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  // uniqueKeys off: the library checks them quadratically; we check them in `convert` with a Set.
  // Node ranges (offsets) plus the LineCounter are all we need; keeping CST tokens only costs memory.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });

  const pos = (offset: number) => {
    const p = lineCounter.linePos(Math.max(0, Math.min(offset, text.length)));
    // linePos answers line 0 when it saw no line start (e.g. empty input); positions are 1-based.
    return p.line < 1 ? { line: 1, column: Math.max(1, offset + 1) } : { line: p.line, column: Math.max(1, p.col) };
  };
  const rangeOf = (r: readonly number[] | undefined | null): SourceRange => {
    if (!r || r.length < 2) return WHOLE_FILE;
    return { start: pos(r[0]!), end: pos(r[1]!) };
  };

  for (const [list, severity] of [[doc.errors, 'error'], [doc.warnings, 'warning']] as const) {
    for (const e of list) {
      const overflow = /call stack/i.test(e.message);
      diagnostics.push({
        file, severity, range: rangeOf(e.pos),
        code: overflow ? 'spec/too-deep' : 'spec/yaml-syntax',
        message: overflow ? 'the spec nests too deeply to parse' : e.message.split('\n')[0]!,
        hint: overflow ? 'a build spec needs only a few levels of nesting; check for unbalanced brackets' : yamlHint(e.code),
      });
    }
  }

  const mapIndex = new WeakMap<YAMLMap, Map<string, Pair>>();
  const indexOf = (m: YAMLMap): Map<string, Pair> => {
    let idx = mapIndex.get(m);
    if (!idx) {
      idx = new Map();
      for (const p of m.items) {
        if (isScalar(p.key) && !idx.has(String(p.key.value))) idx.set(String(p.key.value), p as Pair);
      }
      mapIndex.set(m, idx);
    }
    return idx;
  };

  // Alias.resolve walks the whole document; remember each answer so expansion stays linear.
  const aliasTargets = new Map<unknown, unknown>();
  const deref = (n: unknown, hops = 0): unknown => {
    if (!isAlias(n) || hops >= 32) return n;
    let target = aliasTargets.get(n);
    if (target === undefined) {
      target = n.resolve(doc as Document) ?? null;
      aliasTargets.set(n, target);
    }
    return deref(target, hops + 1);
  };

  const locate = (path: DataPath): Located => {
    let node: unknown = doc.contents;
    let keyNode: unknown;
    let best: Located = { range: node ? rangeOf((node as YamlNode).range) : WHOLE_FILE, exact: path.length === 0 };
    for (let i = 0; i < path.length; i++) {
      const seg = path[i]!;
      const n = deref(node);
      let next: unknown;
      keyNode = undefined;
      if (isMap(n)) {
        const pair = indexOf(n).get(String(seg));
        if (pair) { next = pair.value ?? pair.key; keyNode = pair.key; }
      } else if (isSeq(n) && /^\d+$/.test(String(seg))) {
        next = n.items[Number(seg)];
      }
      if (next === undefined || next === null) return { ...best, exact: false };
      node = next;
      best = {
        range: rangeOf((next as YamlNode).range),
        keyRange: keyNode ? rangeOf((keyNode as YamlNode).range) : undefined,
        exact: i === path.length - 1,
      };
    }
    if (isScalar(node) && node.range) best.sourceText = text.slice(node.range[0], node.range[1]);
    return best;
  };

  if (doc.errors.length > 0) return { value: undefined, locate, diagnostics };

  let aliasValues = 0;
  let failed = false;
  const fail = (code: string, message: string, range: SourceRange, hint?: string) => {
    diagnostics.push({ file, range, severity: 'error', code, message, hint });
    failed = true;
  };
  const convert = (raw: unknown, depth: number, viaAlias = false): unknown => {
    if (failed) return undefined;
    const expanding = viaAlias || isAlias(raw);
    if (expanding && ++aliasValues > limits.maxAliasValues) {
      fail('spec/too-complex', `YAML aliases expand to more than ${limits.maxAliasValues} values`, rangeOf((raw as YamlNode | null)?.range), 'aliases that refer to aliases multiply; a build spec does not need them');
      return undefined;
    }
    const n = deref(raw);
    if (n === null || n === undefined) return null;
    if (depth > limits.maxDepth) {
      fail('spec/too-deep', `the spec nests more than ${limits.maxDepth} levels deep`, rangeOf((n as YamlNode).range), 'a build spec needs only a few levels of nesting');
      return undefined;
    }
    if (isScalar(n)) {
      const v = n.value;
      if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
      if (typeof v === 'bigint') return Number(v);
      return String(v);
    }
    if (isSeq(n)) return n.items.map((item) => convert(item, depth + 1, expanding));
    if (isMap(n)) {
      const out: Record<string, unknown> = {};
      const seen = new Set<string>();
      for (const pair of n.items) {
        if (!isPair(pair)) continue;
        const k = deref(pair.key);
        if (!isScalar(k) || (k.value !== null && typeof k.value === 'object')) {
          fail('spec/complex-key', 'map keys must be plain strings', rangeOf((pair.key as YamlNode | null)?.range));
          continue;
        }
        const key = String(k.value);
        if (seen.has(key)) {
          diagnostics.push({ file, range: rangeOf((pair.key as YamlNode).range), severity: 'error', code: 'spec/duplicate-key', message: `duplicate key '${key}'`, hint: 'each key may appear once in a map; remove or rename one' });
          failed = true;
          continue;
        }
        seen.add(key);
        // defineProperty: a key named `__proto__` must stay data, never change the prototype.
        Object.defineProperty(out, key, { value: convert(pair.value, depth + 1, expanding), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    return undefined;
  };

  let value: unknown;
  try {
    value = convert(doc.contents, 0);
  } catch (e) {
    // Only a stack overflow can get here (our recursion is depth-bounded, so this is defensive).
    fail('spec/too-deep', 'the spec nests too deeply to process', WHOLE_FILE);
    void e;
  }
  return { value: failed ? undefined : value, locate, diagnostics };
}

function yamlHint(code: string): string | undefined {
  switch (code) {
    case 'BAD_INDENT':
    case 'MISSING_CHAR':
      return 'check the indentation and brackets around this point';
    case 'TAB_AS_INDENT':
      return 'YAML indentation must use spaces, not tabs';
    case 'MULTIPLE_DOCS':
      return 'a spec is one YAML document; remove the extra `---`';
    case 'DUPLICATE_KEY':
      return 'each key may appear once in a map';
    default:
      return undefined;
  }
}
