import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createMatcher, findDockerignore, parseDockerignore, parsePatternList } from '../../src/engine/context/dockerignore.js';
import { goMatch } from '../../src/engine/context/glob.js';
import { StowageError } from '../../src/util/errors.js';

describe('parseDockerignore (ignorefile.ReadAll)', () => {
  it('strips the BOM, skips comments only in column 0, trims, cleans and drops one leading slash', () => {
    const text = '\uFEFFtest1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n # not a comment\n! /inverted/abs/path\r\n  spaced  \na/../b/./c/\n';
    const got = parseDockerignore(text).map((p) => (p.exclusion ? '!' : '') + p.pattern);
    assert.deepEqual(got, ['test1', 'test2', 'a/file/here', 'lastfile', '# not a comment', '!inverted/abs/path', 'spaced', 'b/c']);
  });

  it('keeps line numbers for messages', () => {
    assert.deepEqual(parseDockerignore('a\n\n# c\nb').map((p) => p.line), [1, 4]);
  });

  it('rejects a bare "!" and malformed brackets', () => {
    assert.throws(() => parseDockerignore('!\n'), (e: unknown) => e instanceof StowageError && e.code === 'context/bad-pattern');
    assert.throws(() => parseDockerignore('a[\n'), (e: unknown) => e instanceof StowageError && e.code === 'context/bad-pattern');
  });
});

describe('pattern matching (patternmatcher, incl. its test table)', () => {
  // [pattern, path, matches] — from moby/patternmatcher TestMatches plus A11's rules.
  const cases: [string, string, boolean][] = [
    ['**', 'file', true],
    ['**', 'dir/file', true],
    ['**/', 'file', true],
    ['**/**', 'dir/file', true],
    ['dir/**', 'dir/file', true],
    ['dir/**', 'dir/dir2/file', true],
    ['**/dir', 'dir', true],
    ['**/dir', 'dir/file', true],
    ['**/dir2/*', 'dir/dir2/file', true],
    ['**/dir2/**', 'dir/dir2/dir3/file', true],
    ['**file', 'file', true],
    ['**file', 'dir/file', true],
    ['**/file', 'dir/dir/file', true],
    ['**/file*', 'dir/dir/file.txt', true],
    ['**/file*txt', 'dir/dir/file.txt', true],
    ['**/**/*.txt', 'dir/dir/file.txt', true],
    ['**/**/*.txt2', 'dir/dir/file.txt', false],
    ['**/*.txt', 'file.txt', true],
    ['a**/*.txt', 'a/dir/dir/file.txt', true],
    ['a/*.txt', 'a/dir/file.txt', false],
    ['a/*.txt', 'a/file.txt', true],
    ['a[b-d]e', 'ae', false],
    ['a[b-d]e', 'ace', true],
    ['a[^b-d]e', 'aze', true],
    ['.*', '.foo', true],
    ['.*', 'foo', false],
    ['abc.def', 'abcdef', false],
    ['abc.def', 'abc.def', true],
    ['abc?def', 'abcZdef', true],
    ['abc?def', 'abcdef', false],
    ['a\\\\', 'a\\', true],
    ['**/foo/bar', 'foo/bar', true],
    ['**/foo/bar', 'dir/dir2/foo/bar', true],
    ['abc/**', 'abc', false],
    ['abc/**', 'abc/def/ghi', true],
    ['**/.foo', '.foo', true],
    ['**/.foo', 'bar.foo', false],
    ['a(b)c/def', 'a(b)c/def', true],
    ['a(b)c/def', 'a(b)c/xyz', false],
    ['a.|)$(}+{bc', 'a.|)$(}+{bc', true],
    ['dist/*.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
    // `*` and `?` don't cross `/`.
    ['*', 'dir/file', true], // via the parent dir "dir"
    ['*.md', 'docs/readme.md', false],
    ['d?r/x', 'd/r/x', false],
    // A pattern also excludes everything under a matching directory.
    ['dir', 'dir/a/b', true],
    ['dir/a', 'dir/a/b/c', true],
    ['dir/a', 'dir/ab', false],
  ];
  for (const [pattern, path, want] of cases) {
    it(`${JSON.stringify(pattern)} ${want ? 'matches' : 'does not match'} ${JSON.stringify(path)}`, () => {
      assert.equal(createMatcher(parsePatternList([pattern])).matches(path), want);
    });
  }

  it('the last matching pattern wins; exceptions re-include', () => {
    const m = createMatcher(parseDockerignore('*.md\n!README*.md\nREADME-secret.md\n'));
    assert.equal(m.matches('CHANGES.md'), true);
    assert.equal(m.matches('README.md'), false);
    assert.equal(m.matches('README-secret.md'), true);
    assert.equal(m.matches('main.go'), false);
  });

  it('BuildKit docs examples', () => {
    const m = createMatcher(parseDockerignore('# comment\n*/temp*\n*/*/temp*\ntemp?\n'));
    assert.equal(m.matches('somedir/temporary.txt'), true);
    assert.equal(m.matches('somedir/temp'), true);
    assert.equal(m.matches('somedir/subdir/temporary.txt'), true);
    assert.equal(m.matches('tempa'), true);
    assert.equal(m.matches('tempab'), false);
    assert.equal(m.matches('temporary.txt'), false);
    assert.equal(m.matches('# comment'), false);
  });

  it('"#" after column 0 is a pattern, not a comment', () => {
    const m = createMatcher(parseDockerignore(' #notes\n'));
    assert.equal(m.matches('#notes'), true);
  });

  it('an exception under an excluded dir requires walking it; unrelated dirs are skipped', () => {
    const m = createMatcher(parseDockerignore('vendor\n!vendor/keep\nlogs\n'));
    assert.equal(m.matches('vendor/x'), true);
    assert.equal(m.matches('vendor/keep'), false);
    assert.equal(m.matches('vendor/keep/deep'), false);
    assert.equal(m.mayHaveExceptionsUnder('vendor'), true);
    assert.equal(m.mayHaveExceptionsUnder('logs'), false);
    // A wildcard exception could match anywhere: every excluded dir must be walked.
    const w = createMatcher(parseDockerignore('logs\n!**/*.keep\n'));
    assert.equal(w.mayHaveExceptionsUnder('logs'), true);
    assert.equal(createMatcher(parseDockerignore('logs\n')).mayHaveExceptionsUnder('logs'), false);
  });
});

describe('goMatch (filepath.Match)', () => {
  it('handles classes, escapes and the [[] literal bracket', () => {
    assert.equal(goMatch('arr[[]0].txt', 'arr[0].txt'), true);
    assert.equal(goMatch('arr[[]0].txt', 'arr0.txt'), false);
    assert.equal(goMatch('a\\*b', 'a*b'), true);
    assert.equal(goMatch('a\\*b', 'axb'), false);
    assert.equal(goMatch('[a-c]?', 'bz'), true);
    assert.equal(goMatch('[^a-c]*', 'bz'), false);
    assert.equal(goMatch('*', 'a/b'), false);
    assert.equal(goMatch('*x', 'abx'), true);
    assert.throws(() => goMatch('[', 'a'), (e: unknown) => e instanceof StowageError && e.code === 'context/bad-pattern');
  });
});

describe('findDockerignore', () => {
  const setup = () => {
    const dir = mkdtempSync(join(tmpdir(), 'stowage-di-'));
    mkdirSync(join(dir, 'build'));
    writeFileSync(join(dir, '.dockerignore'), 'from-context\n');
    writeFileSync(join(dir, 'build', 'app.Dockerfile'), 'FROM scratch\n');
    return dir;
  };

  it('<Dockerfile>.dockerignore next to the Dockerfile wins over the context one', async (t) => {
    const dir = setup();
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'build', 'app.Dockerfile.dockerignore'), 'from-dockerfile\n');
    const found = await findDockerignore({ contextDir: dir, dockerfilePath: join(dir, 'build', 'app.Dockerfile') });
    assert.equal(found.path, join(dir, 'build', 'app.Dockerfile.dockerignore'));
    assert.deepEqual(found.patterns.map((p) => p.pattern), ['from-dockerfile']);
  });

  it('falls back to <context>/.dockerignore, and to nothing', async (t) => {
    const dir = setup();
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const found = await findDockerignore({ contextDir: dir, dockerfilePath: join(dir, 'build', 'app.Dockerfile') });
    assert.deepEqual(found.patterns.map((p) => p.pattern), ['from-context']);
    rmSync(join(dir, '.dockerignore'));
    assert.deepEqual(await findDockerignore({ contextDir: dir }), { patterns: [] });
  });

  it('an unreadable ignore file is an error, not "no rules"', async (t) => {
    const dir = setup();
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    rmSync(join(dir, '.dockerignore'));
    mkdirSync(join(dir, '.dockerignore')); // EISDIR even for root, who ignores permission bits
    chmodSync(join(dir, '.dockerignore'), 0o000);
    await assert.rejects(findDockerignore({ contextDir: dir }), (e: unknown) => e instanceof StowageError && e.code === 'context/dockerignore-unreadable');
  });
});
