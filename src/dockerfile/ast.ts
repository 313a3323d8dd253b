/**
 * The low-level Dockerfile parser: BuildKit's `parser.Parse` (frontend/dockerfile/parser), exact.
 * It turns text into a list of `RawNode`s: the keyword, the leading `--flags` (split, not validated),
 * and the arguments as the per-instruction line parser produced them (DOCKERFILE.md A1–A4).
 * Typed, validated instructions are built from these nodes in parse.ts.
 *
 * Pure: text in, nodes + warnings + errors out; never throws on bad input.
 */
import { StowageError, type SourceRange } from '../util/errors.js';
import { lexWord } from './shell-lex.js';

export interface Heredoc {
  name: string;
  /** Body lines verbatim, each with its `\n` (CRLF kept as read). */
  content: string;
  /** Expand variables in the body (false when any part of the word was quoted). */
  expand: boolean;
  /** `<<-`: strip leading tabs. */
  chomp: boolean;
  /** File descriptor digits before `<<`, e.g. 3 in `3<<EOF`; 0 (stdin) when absent. */
  fd: number;
}

export interface RawNode {
  /** Keyword as written (original casing). */
  keyword: string;
  /** Keyword lowercased. */
  value: string;
  /** The logical line (continuations joined, comments removed), as BuildKit's `Original`. */
  original: string;
  /** Leading `--flag[=v]` words, quotes and escapes removed. */
  flags: string[];
  /** Arguments per the instruction's line parser. For ENV/LABEL: key, value, "=" or "" triples. */
  args: string[];
  /** ONBUILD's nested instruction. */
  sub?: RawNode;
  /** Arguments came from a JSON array. */
  json: boolean;
  heredocs: Heredoc[];
  /** Comment lines immediately above (for InvalidDefinitionDescription). */
  prevComment: string[];
  startLine: number;
  endLine: number;
  range: SourceRange;
}

export interface ParseProblem {
  message: string;
  code: string;
  startLine: number;
  endLine: number;
}

export interface ParserDirective {
  name: string;
  value: string;
  line: number;
}

export interface RawParseResult {
  nodes: RawNode[];
  escapeToken: string;
  directives: ParserDirective[];
  /** Lines (1-based) of instructions that contained empty continuation lines: [line of instruction end, original]. */
  emptyContinuations: { line: number; startLine: number; original: string }[];
  error?: ParseProblem;
}

export const MAX_LINE_LENGTH = 65535;
const DIRECTIVE_RE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const WHITESPACE_SPLIT = /[\t\v\f\r ]+/;
const HEREDOC_RE = /^(\d*)<<(-?)\s*([^<]*)$/;

class ParseFailure extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly startLine: number,
    readonly endLine: number,
  ) {
    super(message);
  }
}

/** Go's unicode.IsSpace for one UTF-16 unit. */
export function isGoSpace(ch: string | undefined): boolean {
  if (ch === undefined) return false;
  const c = ch.charCodeAt(0);
  if (c === 32 || (c >= 9 && c <= 13)) return true;
  if (c < 0x85) return false;
  return c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

function trimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length && isGoSpace(s[i])) i++;
  return s.slice(i);
}

function trimSpace(s: string): string {
  let j = s.length;
  while (j > 0 && isGoSpace(s[j - 1])) j--;
  return trimLeftSpace(s.slice(0, j));
}

function trimNewline(s: string): string {
  if (s.endsWith('\r\n')) return s.slice(0, -2);
  if (s.endsWith('\n')) return s.slice(0, -1);
  return s;
}

function isComment(line: string): boolean {
  return trimLeftSpace(trimNewline(line)).startsWith('#');
}

/** Split into lines keeping each line's `\n` (bufio.ScanLines variant BuildKit uses). */
function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) {
      if (start < text.length) lines.push(text.slice(start));
      break;
    }
    lines.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
  return lines;
}

interface Directives {
  escapeToken: string;
  continuation: RegExp;
  done: boolean;
  seen: Set<string>;
  parsed: ParserDirective[];
  lineNo: number;
}

function continuationRegex(escape: string): RegExp {
  const e = escape === '\\' ? '\\\\' : '`';
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

function possibleParserDirective(d: Directives, line: string, lineNo: number): void {
  d.lineNo++;
  if (d.done) return;
  const m = DIRECTIVE_RE.exec(line);
  if (m === null) {
    d.done = true;
    return;
  }
  const key = (m[1] as string).toLowerCase();
  if (!KNOWN_DIRECTIVES.has(key)) {
    d.done = true;
    return;
  }
  if (d.seen.has(key)) {
    throw new ParseFailure(`only one ${key} parser directive can be used`, 'dockerfile/duplicate-directive', lineNo, lineNo);
  }
  d.seen.add(key);
  const value = m[2] as string;
  d.parsed.push({ name: key, value, line: lineNo });
  if (key === 'escape') {
    if (value !== '`' && value !== '\\') {
      throw new ParseFailure(`invalid escape token '${value}' does not match ${'`'} or \\`, 'dockerfile/invalid-escape', lineNo, lineNo);
    }
    d.escapeToken = value;
    d.continuation = continuationRegex(value);
  }
}

function processLine(d: Directives, token: string, stripLeft: boolean, lineNo: number): string {
  let t = trimNewline(token);
  if (stripLeft) t = trimLeftSpace(t);
  possibleParserDirective(d, t, lineNo);
  return isComment(t) ? '' : t;
}

function trimContinuation(line: string, d: Directives): [string, boolean] {
  if (d.continuation.test(line)) {
    return [line.replace(d.continuation, '$1'), false];
  }
  return [line, true];
}

// ---------------------------------------------------------------------------------------------
// split_command.go

function splitCommand(line: string): { cmd: string; flags: string[]; args: string } {
  const t = trimSpace(line);
  const m = WHITESPACE_SPLIT.exec(t);
  if (m === null) return { cmd: t, flags: [], args: '' };
  const cmd = t.slice(0, m.index);
  const rest = t.slice(m.index + m[0].length);
  const { args, flags } = extractBuilderFlags(rest);
  return { cmd, flags, args: trimSpace(args) };
}

/** BuildKit extractBuilderFlags: leading `--words`, quotes removed, `\` escapes, bare `--` ends. */
export function extractBuilderFlags(line: string): { args: string; flags: string[] } {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    let ch = pos < line.length ? (line[pos] as string) : '';
    if (phase === 'spaces') {
      if (pos === line.length) break;
      if (isGoSpace(ch)) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') {
        return { args: line.slice(pos), flags: words };
      }
      phase = 'word';
    }
    if (pos === line.length) {
      if (word !== '--' && (blankOK || word.length > 0)) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isGoSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return { args: line.slice(pos), flags: words };
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        pos++;
        ch = line[pos] as string;
      }
      word += ch;
      continue;
    }
    // quote
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      pos++;
      ch = line[pos] as string;
    }
    word += ch;
  }
  return { args: '', flags: words };
}

// ---------------------------------------------------------------------------------------------
// line_parsers.go

interface LineParse {
  args: string[];
  json: boolean;
  sub?: RawNode;
}

/** BuildKit parseWords: quote-aware split; quotes and escapes are kept in the words. */
export function parseWords(rest: string, escapeToken: string): string[] {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  const chars = Array.from(rest);
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = pos < chars.length ? (chars[pos] as string) : '';
    if (phase === 'spaces') {
      if (pos === chars.length) break;
      if (isGoSpace(ch)) continue;
      phase = 'word';
    }
    if (pos === chars.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isGoSpace(ch)) {
        phase = 'spaces';
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === escapeToken) {
        if (pos + 1 === chars.length) continue;
        word += ch;
        pos++;
        ch = chars[pos] as string;
      }
      word += ch;
      continue;
    }
    if (ch === quote) phase = 'word';
    if (ch === escapeToken && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = 'word';
        continue;
      }
      pos++;
      word += ch;
      ch = chars[pos] as string;
    }
    word += ch;
  }
  return words;
}

const NOT_STRING_ARRAY = 'when using JSON array syntax, arrays must be comprised of strings only';

/** undefined when not JSON; throws ParseFailure-compatible marker for non-string arrays. */
function parseJSONArray(rest: string): string[] | undefined {
  const t = trimLeftSpace(rest);
  if (!t.startsWith('[')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (parsed === null) return [];
  if (!Array.isArray(parsed)) return undefined;
  for (const v of parsed) if (typeof v !== 'string') throw new Error(NOT_STRING_ARRAY);
  return parsed as string[];
}

function whitespaceList(rest: string): string[] {
  if (rest === '') return [];
  return rest.split(WHITESPACE_SPLIT);
}

function parseMaybeJSON(rest: string): LineParse {
  if (rest === '') return { args: [], json: false };
  const j = parseJSONArray(rest);
  if (j !== undefined) return { args: j, json: true };
  return { args: [rest], json: false };
}

function parseMaybeJSONToList(rest: string): LineParse {
  const j = parseJSONArray(rest);
  if (j !== undefined) return { args: j, json: true };
  return { args: whitespaceList(rest), json: false };
}

function parseNameVal(rest: string, key: string, escapeToken: string): LineParse {
  const words = parseWords(rest, escapeToken);
  if (words.length === 0) return { args: [], json: false };
  if (!(words[0] as string).includes('=')) {
    const m = WHITESPACE_SPLIT.exec(rest);
    if (m === null) throw new Error(`${key} must have two arguments`);
    return { args: [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ''], json: false };
  }
  const args: string[] = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq < 0) throw new Error(`Syntax error - can't find = in ${goQuote(w)}. Must be of the form: name=value`);
    args.push(w.slice(0, eq), w.slice(eq + 1), '=');
  }
  return { args, json: false };
}

function parseHealthConfig(rest: string): LineParse {
  let sep = 0;
  while (sep < rest.length && !isGoSpace(rest[sep])) sep++;
  let next = sep;
  while (next < rest.length && isGoSpace(rest[next])) next++;
  if (sep === 0) return { args: [], json: false };
  const cmd = parseMaybeJSON(rest.slice(next));
  return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
}

function dispatchLineParser(value: string, rest: string, escapeToken: string, lineInfo: LineInfo): LineParse {
  switch (value) {
    case 'add':
    case 'copy':
    case 'volume':
      return parseMaybeJSONToList(rest);
    case 'arg':
      return { args: parseWords(rest, escapeToken), json: false };
    case 'cmd':
    case 'entrypoint':
    case 'run':
    case 'shell':
      return parseMaybeJSON(rest);
    case 'env':
      return parseNameVal(rest, 'ENV', escapeToken);
    case 'label':
      return parseNameVal(rest, 'LABEL', escapeToken);
    case 'expose':
    case 'from':
      return { args: whitespaceList(rest), json: false };
    case 'healthcheck':
      return parseHealthConfig(rest);
    case 'maintainer':
    case 'stopsignal':
    case 'user':
    case 'workdir':
      return { args: rest === '' ? [] : [rest], json: false };
    case 'onbuild': {
      if (rest === '') return { args: [], json: false };
      return { args: [], json: false, sub: newNodeFromLine(rest, escapeToken, [], lineInfo) };
    }
    default:
      return { args: [], json: false };
  }
}

interface LineInfo {
  startLine: number;
  endLine: number;
  range: SourceRange;
}

function newNodeFromLine(line: string, escapeToken: string, comments: string[], info: LineInfo): RawNode {
  const { cmd, flags, args } = splitCommand(line);
  const value = cmd.toLowerCase();
  let parsed: LineParse;
  try {
    parsed = dispatchLineParser(value, args, escapeToken, info);
  } catch (e) {
    if (e instanceof ParseFailure) throw e;
    throw new ParseFailure((e as Error).message, 'dockerfile/syntax', info.startLine, info.endLine);
  }
  const node: RawNode = {
    keyword: cmd,
    value,
    original: line,
    flags,
    args: parsed.args,
    json: parsed.json,
    heredocs: [],
    prevComment: comments,
    startLine: info.startLine,
    endLine: info.endLine,
    range: info.range,
  };
  if (parsed.sub !== undefined) node.sub = parsed.sub;
  return node;
}

function canContainHeredoc(node: RawNode): boolean {
  // ONBUILD's nested instruction is what matters
  const n = node.value === 'onbuild' && node.sub !== undefined ? node.sub : node;
  if (n.json) return false;
  return n.value === 'run' || n.value === 'copy' || n.value === 'add';
}

/**
 * Heredoc words in a line (BuildKit heredocsFromLine/ParseHeredoc): split with the shell lexer
 * keeping quotes and escapes, match each word, and lex the name with and without raw quotes:
 * if the quote counts differ, part of the name was quoted and the body is not expanded.
 */
export function heredocsFromLine(line: string): Heredoc[] {
  let words: string[];
  try {
    words = lexWord(line, NO_ENV, { rawQuotes: true, rawEscapes: true }).words;
  } catch {
    return [];
  }
  const docs: Heredoc[] = [];
  for (const w of words) {
    const doc = parseHeredocWord(w);
    if (doc !== undefined) docs.push(doc);
  }
  return docs;
}

/** BuildKit ParseHeredoc for one word: undefined when it is not a heredoc. Throws on lexer errors. */
export function parseHeredocWord(word: string): Heredoc | undefined {
  const m = HEREDOC_RE.exec(word);
  if (m === null) return undefined;
  const rest = m[3] as string;
  if (rest.length === 0) return undefined;
  const plain = lexWord(rest, NO_ENV, { skipUnsetEnv: true }).words;
  if (plain.length !== 1) return undefined;
  const raw = lexWord(rest, NO_ENV, { skipUnsetEnv: true, rawQuotes: true }).words;
  const name = plain[0] as string;
  const quotes = (s: string) => (s.match(/['"]/g) ?? []).length;
  return {
    name,
    content: '',
    expand: quotes(name) === quotes(raw[0] ?? ''),
    chomp: m[2] === '-',
    fd: m[1] === '' ? 0 : Number.parseInt(m[1] as string, 10),
  };
}

const NO_ENV = (): string | undefined => undefined;

function trimLeadingTabs(s: string): string {
  let i = 0;
  while (s[i] === '\t') i++;
  return s.slice(i);
}

function rangeOf(lines: string[], startLine: number, endLine: number): SourceRange {
  const last = lines[endLine - 1] ?? '';
  return { start: { line: startLine, column: 1 }, end: { line: endLine, column: trimNewline(last).length + 1 } };
}

/** Go strconv.Quote. */
export function goQuote(s: string): string {
  // Printable ASCII is written as is (only `"` and `\` escaped): the common case, without the
  // per-character Unicode class test below.
  if (PRINTABLE_ASCII.test(s)) return `"${s.replace(/["\\]/g, '\\$&')}"`;
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    switch (ch) {
      case '"':
        out += '\\"';
        continue;
      case '\\':
        out += '\\\\';
        continue;
      case '\x07':
        out += '\\a';
        continue;
      case '\b':
        out += '\\b';
        continue;
      case '\f':
        out += '\\f';
        continue;
      case '\n':
        out += '\\n';
        continue;
      case '\r':
        out += '\\r';
        continue;
      case '\t':
        out += '\\t';
        continue;
      case '\v':
        out += '\\v';
        continue;
    }
    if (cp < 0x20 || cp === 0x7f) out += '\\x' + cp.toString(16).padStart(2, '0');
    else if (cp === 0xfffd && ch !== '\ufffd') out += '\\ufffd';
    else if (/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch)) out += ch;
    else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += '\\U' + cp.toString(16).padStart(8, '0');
  }
  return out + '"';
}

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Parse the whole text into raw nodes. Never throws. */
export function parseRaw(text: string): RawParseResult {
  const d: Directives = {
    escapeToken: '\\',
    continuation: continuationRegex('\\'),
    done: false,
    seen: new Set(),
    parsed: [],
    lineNo: 0,
  };
  const nodes: RawNode[] = [];
  const emptyContinuations: RawParseResult['emptyContinuations'] = [];
  const lines = splitLines(text);
  const result = (error?: ParseProblem): RawParseResult => {
    const r: RawParseResult = { nodes, escapeToken: d.escapeToken, directives: d.parsed, emptyContinuations };
    if (error !== undefined) r.error = error;
    return r;
  };
  let idx = 0;
  let currentLine = 0;
  let comments: string[] = [];
  try {
    for (const l of lines) {
      if (l.length > MAX_LINE_LENGTH + 1) {
        const n = lines.indexOf(l) + 1;
        throw new ParseFailure(`dockerfile line greater than max allowed size of ${MAX_LINE_LENGTH}`, 'dockerfile/line-too-long', n, n);
      }
    }
    while (idx < lines.length) {
      let bytesRead = lines[idx++] as string;
      if (currentLine === 0 && bytesRead.startsWith('\ufeff')) bytesRead = bytesRead.slice(1);
      if (isComment(bytesRead)) {
        const c = trimSpace(trimLeftSpace(trimNewline(bytesRead)).slice(1));
        if (c === '') comments = [];
        else comments.push(c);
      }
      const directivesBefore = d.parsed.length;
      let line = processLine(d, bytesRead, true, currentLine + 1);
      // a parser directive is not a comment describing the next instruction
      if (d.parsed.length > directivesBefore) comments.pop();
      currentLine++;
      const startLine = currentLine;
      let isEnd: boolean;
      [line, isEnd] = trimContinuation(line, d);
      if (isEnd && line.length === 0) {
        // a blank line detaches comments from the next instruction
        if (!isComment(bytesRead)) comments = [];
        continue;
      }

      let hasEmptyContinuation = false;
      while (!isEnd && idx < lines.length) {
        const raw = lines[idx++] as string;
        const processed = processLine(d, raw, false, currentLine + 1);
        currentLine++;
        if (isComment(raw)) continue;
        if (trimLeftSpace(trimNewline(raw)).length === 0) {
          hasEmptyContinuation = true;
          continue;
        }
        let cont: string;
        [cont, isEnd] = trimContinuation(processed, d);
        line += cont;
      }
      if (hasEmptyContinuation) emptyContinuations.push({ line: currentLine, startLine, original: line });

      const info: LineInfo = { startLine, endLine: currentLine, range: rangeOf(lines, startLine, currentLine) };
      const node = newNodeFromLine(line, d.escapeToken, comments, info);
      if (canContainHeredoc(node) && line.includes('<<')) {
        const docs = heredocsFromLine(line);
        for (const doc of docs) {
          let terminated = false;
          while (idx < lines.length) {
            const raw = lines[idx++] as string;
            currentLine++;
            let possible = trimNewline(raw);
            if (doc.chomp) possible = trimLeadingTabs(possible);
            if (possible === doc.name) {
              terminated = true;
              break;
            }
            doc.content += raw;
          }
          if (!terminated) throw new ParseFailure('unterminated heredoc', 'dockerfile/unterminated-heredoc', startLine, currentLine);
          node.heredocs.push(doc);
        }
        const target = node.value === 'onbuild' && node.sub !== undefined ? node.sub : node;
        if (target !== node) target.heredocs = node.heredocs;
        node.endLine = currentLine;
        node.range = rangeOf(lines, startLine, currentLine);
        if (target !== node) {
          target.endLine = currentLine;
          target.range = node.range;
        }
      }
      nodes.push(node);
      comments = [];
    }
    if (nodes.length === 0) {
      if (text.length === 0) {
        return result({ message: 'the Dockerfile cannot be empty', code: 'dockerfile/empty', startLine: 1, endLine: 1 });
      }
      return result({ message: 'file with no instructions', code: 'dockerfile/no-instructions', startLine: Math.max(1, currentLine), endLine: Math.max(1, currentLine) });
    }
    return result();
  } catch (e) {
    if (e instanceof ParseFailure) {
      return result({ message: e.message, code: e.code, startLine: Math.max(1, e.startLine), endLine: Math.max(1, e.endLine) });
    }
    // e.g. a heredoc name the shell lexer rejects
    const code = e instanceof StowageError ? e.code : 'dockerfile/syntax';
    const line = Math.max(1, currentLine);
    return result({ message: e instanceof Error ? e.message : String(e), code, startLine: line, endLine: line });
  }
}

/** BuildKit's `Node.Dump()` for one node (the conformance s-expression format). */
export function dumpNode(node: RawNode): string {
  let s = node.value;
  if (node.flags.length > 0) s += ' [' + node.flags.map(goQuote).join(' ') + ']';
  if (node.sub !== undefined) s += ' (' + dumpNode(node.sub) + ')';
  for (const a of node.args) s += ' ' + goQuote(a);
  return s.trim();
}

export function dumpNodes(nodes: RawNode[]): string {
  return nodes.map((n) => '(' + dumpNode(n) + ')\n').join('');
}
