import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandWord, expandWords, referencedVariables } from '../../src/dockerfile/shell-lex.js';
import { StowageError } from '../../src/util/errors.js';

const env = new Map([
  ['PWD', '/home'],
  ['SHELL', 'bash'],
  ['NULL', ''],
  ['FILE', 'archive.tar.gz'],
]);

describe('expandWord (BuildKit ProcessWord)', () => {
  const cases: [string, string][] = [
    ['he$PWD', 'he/home'],
    ['he\\$PWD', 'he$PWD'],
    ["'$PWD'", '$PWD'],
    ['"he$PWD"', 'he/home'],
    ['abc\\tdef', 'abctdef'],
    ['"abc\\tdef"', 'abc\\tdef'],
    ['hello\\', 'hello'],
    ['$.', '$.'],
    ['he$1x', 'hex'],
    ['${XXX:-${PWD:-yyy}}', '/home'],
    ['${NULL-d}', ''],
    ['${NULL:-d}', 'd'],
    ['${UNSET-d}', 'd'],
    ['${PWD:+set}', 'set'],
    ['${UNSET+set}', ''],
    ['${FILE%.*}', 'archive.tar'],
    ['${FILE%%.*}', 'archive'],
    ['${FILE#*.}', 'tar.gz'],
    ['${FILE##*.}', 'gz'],
    ['${FILE/a/A}', 'Archive.tar.gz'],
    ['${FILE//a/A}', 'Archive.tAr.gz'],
    ['${XXX:-\\$PWD:}', '$PWD:'],
    ['${aaa}}', '}'],
  ];
  for (const [src, want] of cases) {
    it(`${src} → ${want}`, () => assert.equal(expandWord(src, env), want));
  }

  it('rejects bad substitutions with a stable code', () => {
    for (const bad of ['${}', '${:x}', '${{a}', '${PWD', '${PWD:=x}', '${X:#x}', "'open", '"open']) {
      assert.throws(
        () => expandWord(bad, env),
        (e: unknown) => e instanceof StowageError && e.code.startsWith('dockerfile/'),
        bad,
      );
    }
  });

  it('reports ${v:?msg} with the variable name', () => {
    assert.throws(() => expandWord('${NULL:?must be set}', env), /NULL: must be set/);
    assert.throws(() => expandWord('${UNSET?}', env), /UNSET: is not allowed to be unset/);
  });

  it('honours the backtick escape', () => {
    assert.equal(expandWord('a`$PWD', env, { escape: '`' }), 'a$PWD');
    assert.equal(expandWord('C:\\dir', env, { escape: '`' }), 'C:\\dir');
  });
});

describe('expandWords (ProcessWords)', () => {
  const words = new Map([['space', 'abc  def'], ['leading', '  ab c']]);
  it('splits unquoted expansions, keeps quoted ones', () => {
    assert.deepEqual(expandWords('hello${space}bye', words), ['helloabc', 'defbye']);
    assert.deepEqual(expandWords('hello"${space}"bye', words), ['helloabc  defbye']);
    assert.deepEqual(expandWords('hello${leading}', words), ['hello', 'ab', 'c']);
    assert.deepEqual(expandWords('hello\\ there', words), ['hello there']);
  });
});

describe('referencedVariables', () => {
  it('separates set and unset names', () => {
    const r = referencedVariables('$PWD/${MISSING:-x}/$NULL', env);
    assert.deepEqual([...r.matched].sort(), ['NULL', 'PWD']);
    assert.deepEqual([...r.unmatched], ['MISSING']);
  });
});

describe('words with nothing to expand or unquote', () => {
  it('give exactly what the character-by-character lexer gives', () => {
    // A trailing '' (an empty quoted string) changes neither the word nor the words, but sends
    // the text through the full lexer: the two answers must match.
    const words = ['/usr/local/bin', 'a b  c', '  lead and trail  ', '', ' ', '8080/tcp 9090', 'x\u00a0y\u2003z\u3000w', 'tab\there\nnl', 'emoji \ud83d\ude00 ok', 'a,b;c|d&e', '--flag=value', 'C:\u200bpath'];
    for (const w of words) {
      for (const escape of ['\\', '`']) {
        assert.equal(expandWord(w, {}, { escape }), expandWord(`${w}''`, {}, { escape }), JSON.stringify(w));
        assert.deepEqual(expandWords(w, {}, { escape }), expandWords(`${w}''`, {}, { escape }), JSON.stringify(w));
      }
    }
    assert.deepEqual(expandWords('a b\u2028c', {}), ['a', 'b', 'c']);
  });
});
