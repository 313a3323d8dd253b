/**
 * BuildKit's shell lexer (frontend/dockerfile/shell/lex.go), re-implemented exactly: `$name`,
 * `${name}` and every `${…}` modifier of DOCKERFILE.md A6, quote and escape processing, and
 * ProcessWords-style splitting. Errors are thrown as StowageErrors (`dockerfile/bad-substitution`,
 * `dockerfile/unterminated-quote`, `dockerfile/unset-variable`, `dockerfile/bad-pattern`).
 *
 * Pure: the environment is a parameter, nothing is cached between calls.
 */
import { StowageError } from '../util/errors.js';

/** Variable lookup: a map, or a function returning undefined for unset names. */
export type ShellEnv = ReadonlyMap<string, string> | Readonly<Record<string, string>> | ((name: string) => string | undefined);

export interface LexOptions {
  /** The Dockerfile escape character (`\` or `` ` ``). */
  escape?: string;
  /** Keep quote characters in the output (BuildKit RawQuotes). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output (BuildKit RawEscapes). */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters (used for COPY heredoc bodies). */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written (`$X`, `${X}`). */
  skipUnsetEnv?: boolean;
  /** Windows platforms look environment keys up case-insensitively. */
  caseInsensitiveEnv?: boolean;
}

export interface ExpandResult {
  /** The expanded word (ProcessWord). */
  word: string;
  /** The expanded words (ProcessWords). */
  words: string[];
  /** Names looked up that were set. */
  matched: Set<string>;
  /** Names looked up that were not set. */
  unmatched: Set<string>;
}

const EOF = -1;
const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

function isSpace(ch: string): boolean {
  // Go's unicode.IsSpace
  const c = ch.charCodeAt(0);
  if (c === 32 || (c >= 9 && c <= 13)) return true;
  if (c < 0x85) return false;
  return c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}
const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;
function isLetter(ch: string): boolean {
  const c = ch.charCodeAt(0);
  if (c < 128) return (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
  return LETTER.test(ch);
}
function isDigit(ch: string): boolean {
  const c = ch.charCodeAt(0);
  if (c < 128) return c >= 48 && c <= 57;
  return DIGIT.test(ch);
}

function lexError(code: string, message: string): StowageError {
  return new StowageError(code, message);
}

class WordsCollector {
  word = '';
  words: string[] = [];
  inWord = false;
  addChar(ch: string): void {
    if (isSpace(ch) && this.inWord) {
      if (this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else if (!isSpace(ch)) {
      this.addRawChar(ch);
    }
  }
  addRawChar(ch: string): void {
    this.word += ch;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  getWords(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class ShellWord {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  private readonly lookup: (name: string) => string | undefined;

  constructor(
    source: string,
    env: ShellEnv,
    private readonly escapeToken: string,
    private readonly opts: LexOptions,
  ) {
    this.chars = Array.from(source);
    this.rawEscapes = opts.rawEscapes ?? false;
    this.lookup = makeLookup(env, opts.caseInsensitiveEnv ?? false);
  }

  private peek(): string | typeof EOF {
    return this.pos < this.chars.length ? (this.chars[this.pos] as string) : EOF;
  }
  private next(): string | typeof EOF {
    return this.pos < this.chars.length ? (this.chars[this.pos++] as string) : EOF;
  }

  private getEnv(name: string): string | undefined {
    const v = this.lookup(name);
    if (v === undefined) this.unmatched.add(name);
    else this.matched.add(name);
    return v;
  }

  process(): { word: string; words: string[] } {
    return this.processStopOnAny([], this.rawEscapes);
  }

  private processStopOnAny(stops: string[], rawEscapes: boolean): { word: string; words: string[] } {
    let result = '';
    const words = new WordsCollector();
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      while (this.peek() !== EOF) {
        const ch = this.peek() as string;
        if (stops.includes(ch)) {
          this.next();
          return { word: result, words: words.getWords() };
        }
        if (ch === '$') {
          const tmp = this.processDollar();
          result += tmp;
          words.addString(tmp);
        } else if (!this.opts.skipProcessQuotes && ch === "'") {
          const tmp = this.processSingleQuote();
          result += tmp;
          words.addRawString(tmp);
        } else if (!this.opts.skipProcessQuotes && ch === '"') {
          const tmp = this.processDoubleQuote();
          result += tmp;
          words.addRawString(tmp);
        } else {
          let c = this.next() as string;
          if (c === this.escapeToken) {
            if (this.rawEscapes) {
              words.addRawChar(c);
              result += c;
            }
            const n = this.next();
            if (n === EOF) break;
            c = n;
            words.addRawChar(c);
          } else {
            words.addChar(c);
          }
          result += c;
        }
      }
      if (stops.length > 0) {
        throw lexError('dockerfile/bad-substitution', `unexpected end of statement while looking for matching ${stops.join('')}`);
      }
      return { word: result, words: words.getWords() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    let result = '';
    let ch = this.next();
    if (this.opts.rawQuotes) result += ch;
    for (;;) {
      ch = this.next();
      if (ch === EOF) {
        throw lexError('dockerfile/unterminated-quote', 'unexpected end of statement while looking for matching single-quote');
      }
      if (ch === "'") {
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const open = this.next() as string;
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const p = this.peek();
      if (p === EOF) {
        throw lexError('dockerfile/unterminated-quote', 'unexpected end of statement while looking for matching double-quote');
      }
      if (p === '"') {
        this.next();
        if (this.opts.rawQuotes) result += '"';
        return result;
      }
      if (p === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next() as string;
      if (ch === this.escapeToken) {
        if (this.rawEscapes) result += ch;
        const n = this.peek();
        if (n === EOF) continue; // ignore the escape at the end of the word
        if (n === '"' || n === '$' || n === this.escapeToken) {
          ch = this.next() as string;
        } else if (this.rawEscapes) {
          continue; // already written
        }
      }
      result += ch;
    }
  }

  private processName(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek() as string;
      if (name.length === 0 && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek() as string)) name += this.next();
        return name;
      }
      if (name.length === 0 && SPECIAL_PARAMS.has(ch)) {
        return this.next() as string;
      }
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }

  private processDollar(): string {
    this.next(); // the $
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.getEnv(name);
      if (value === undefined && this.opts.skipUnsetEnv) return '$' + name;
      return value ?? '';
    }
    this.next(); // the {
    const first = this.peek();
    if (first === EOF) throw lexError('dockerfile/bad-substitution', "syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') {
      throw lexError('dockerfile/bad-substitution', 'syntax error: bad substitution');
    }
    const name = this.processName();
    let ch = this.next();
    if (ch === EOF) throw lexError('dockerfile/bad-substitution', "syntax error: missing '}'");
    let chs = ch;
    let nullIsUnset = false;
    if (ch === '}') {
      const value = this.getEnv(name);
      if (value === undefined && this.opts.skipUnsetEnv) return '${' + name + '}';
      return value ?? '';
    }
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.next();
      if (ch === EOF) throw lexError('dockerfile/bad-substitution', "syntax error: missing '}'");
      chs += ch;
    }
    if (ch === '+' || ch === '-' || ch === '?' || ch === '#' || ch === '%' || nullIsUnset) {
      const rawEscapes = ch === '#' || ch === '%';
      if (nullIsUnset && rawEscapes) {
        throw lexError('dockerfile/bad-substitution', `unsupported modifier (${chs}) in substitution`);
      }
      let word: string;
      try {
        word = this.processStopOnAny(['}'], rawEscapes).word;
      } catch (e) {
        if (this.peek() === EOF) throw lexError('dockerfile/bad-substitution', "syntax error: missing '}'");
        throw e;
      }
      const value = this.getEnv(name);
      if (this.opts.skipUnsetEnv && value === undefined) return '${' + name + chs + word + '}';
      const set = value !== undefined;
      switch (ch) {
        case '-':
          if (!set || (nullIsUnset && value === '')) return word;
          return value;
        case '+':
          if (!set || (nullIsUnset && value === '')) return '';
          return word;
        case '?':
          if (!set) {
            throw lexError('dockerfile/unset-variable', `${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
          }
          if (nullIsUnset && value === '') {
            throw lexError('dockerfile/unset-variable', `${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
          }
          return value;
        case '%':
        case '#': {
          let greedy = false;
          if (word.length > 0 && word[0] === ch) {
            greedy = true;
            word = word.slice(1);
          }
          return ch === '%' ? trimSuffix(word, value ?? '', greedy) : trimPrefix(word, value ?? '', greedy);
        }
        default:
          throw lexError('dockerfile/bad-substitution', `unsupported modifier (${chs}) in substitution`);
      }
    }
    if (ch === '/') {
      const replaceAll = this.peek() === '/';
      if (replaceAll) this.next();
      let pattern: string;
      let replacement = '';
      const before = this.pos;
      try {
        pattern = this.processStopOnAny(['/', '}'], true).word;
      } catch (e) {
        if (this.peek() === EOF) throw lexError('dockerfile/bad-substitution', "syntax error: missing '}'");
        throw e;
      }
      // which stop character ended the pattern?
      const stoppedOn = this.pos > before ? this.chars[this.pos - 1] : undefined;
      if (stoppedOn === '/') {
        try {
          replacement = this.processStopOnAny(['}'], true).word;
        } catch (e) {
          if (this.peek() === EOF) throw lexError('dockerfile/bad-substitution', "syntax error: missing '}'");
          throw e;
        }
      }
      const value = this.getEnv(name);
      if (this.opts.skipUnsetEnv && value === undefined) return '${' + name + '/' + pattern + '/' + replacement + '}';
      const re = shellPatternToRegex(pattern, true, false, replaceAll);
      const v = value ?? '';
      if (replaceAll) return v.replace(re, () => replacement);
      const m = re.exec(v);
      if (m === null) return v;
      return v.slice(0, m.index) + replacement + v.slice(m.index + m[0].length);
    }
    throw lexError('dockerfile/bad-substitution', `unsupported modifier (${chs}) in substitution`);
  }
}

function makeLookup(env: ShellEnv, caseInsensitive: boolean): (name: string) => string | undefined {
  let base: (name: string) => string | undefined;
  if (typeof env === 'function') base = env;
  else if (env instanceof Map) base = (n) => env.get(n);
  else {
    const rec = env as Readonly<Record<string, string>>;
    base = (n) => (Object.prototype.hasOwnProperty.call(rec, n) ? rec[n] : undefined);
  }
  if (!caseInsensitive || typeof env === 'function') return base;
  const entries: [string, string][] = env instanceof Map ? [...env.entries()] : Object.entries(env as Record<string, string>);
  return (n) => {
    const direct = base(n);
    if (direct !== undefined) return direct;
    const lower = n.toLowerCase();
    for (const [k, v] of entries) if (k.toLowerCase() === lower) return v;
    return undefined;
  };
}

function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  let out = anchored ? '^' : '';
  const star = greedy ? '[^]*' : '[^]*?';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const tok = chars[i] as string;
    switch (tok) {
      case '*':
        out += star;
        continue;
      case '?':
        out += '[^]';
        continue;
      case '\\': {
        const nx = chars[i + 1];
        if (nx === '}' || nx === '/') continue; // the escape isn't part of the pattern
        i++;
        if (nx !== '*' && nx !== '?' && nx !== '\\') {
          throw lexError('dockerfile/bad-pattern', `invalid pattern (${pattern}) in substitution: invalid escape '\\${nx ?? ''}'`);
        }
        out += '\\' + nx;
        continue;
      }
      default:
        out += tok.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
    }
  }
  return new RegExp(out, global ? 'gu' : 'u');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const re = shellPatternToRegex(pattern, greedy, true);
  const m = re.exec(value);
  return m === null ? value : value.slice(m[0].length);
}

function reversePattern(pattern: string): string {
  const p = Array.from(pattern);
  const out: string[] = new Array<string>(p.length);
  const last = p.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = p[i] as string;
    const o = last - i;
    if (tok === '\\' && i !== last) {
      out[o - 1] = tok;
      out[o] = p[i + 1] as string;
      i += 2;
    } else {
      out[o] = tok;
      i++;
    }
  }
  return out.join('');
}

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  const rev = (s: string) => Array.from(s).reverse().join('');
  return rev(trimPrefix(reversePattern(pattern), rev(value), greedy));
}

/** Characters that make the lexer do more than split on spaces (either escape token, quotes, `$`). */
const LEXER_SPECIAL = /[$'"\\`]/;
/** Go's unicode.IsSpace, as one run. */
const GO_SPACES = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** Full lexer entry point: the word, the words, and which variables were looked up. */
export function lexWord(source: string, env: ShellEnv, options: LexOptions = {}): ExpandResult {
  // Most words (paths, ports, names) hold nothing to expand or unquote: the word is the text itself
  // and the words are its space-separated parts, exactly what the character loop below produces.
  if (!LEXER_SPECIAL.test(source)) {
    return { word: source, words: source.split(GO_SPACES).filter((w) => w !== ''), matched: new Set(), unmatched: new Set() };
  }
  const sw = new ShellWord(source, env, options.escape ?? '\\', options);
  const { word, words } = sw.process();
  return { word, words, matched: sw.matched, unmatched: sw.unmatched };
}

/** BuildKit ProcessWord: expand one word (quotes removed). Throws StowageError. */
export function expandWord(word: string, env: ShellEnv, options: LexOptions = {}): string {
  return lexWord(word, env, options).word;
}

/** BuildKit ProcessWords: expand and split into words the way ENV/EXPOSE do. Throws StowageError. */
export function expandWords(word: string, env: ShellEnv, options: LexOptions = {}): string[] {
  return lexWord(word, env, options).words;
}

/**
 * Names of the variables a word references, with whether each was set in `env`. Errors in the
 * word are swallowed (they are reported elsewhere); the names seen before the error are kept.
 */
export function referencedVariables(word: string, env: ShellEnv, options: LexOptions = {}): { matched: Set<string>; unmatched: Set<string> } {
  const sw = new ShellWord(word, env, options.escape ?? '\\', options);
  try {
    sw.process();
  } catch {
    // fall through with what was collected
  }
  return { matched: sw.matched, unmatched: sw.unmatched };
}
