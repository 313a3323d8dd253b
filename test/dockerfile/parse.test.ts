import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dumpNodes, parseRaw } from '../../src/dockerfile/ast.js';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import type { Dockerfile, Instruction } from '../../src/dockerfile/types.js';

function ok(text: string): Dockerfile {
  const r = parseDockerfile(text, { file: 'Dockerfile' });
  assert.deepEqual(r.diagnostics, [], JSON.stringify(r.diagnostics));
  assert.ok(r.dockerfile);
  return r.dockerfile;
}

function only(text: string): Instruction {
  const df = ok(`FROM scratch\n${text}`);
  const i = df.stages[0]!.instructions[0];
  assert.ok(i);
  return i;
}

function errorOf(text: string): { message: string; line: number; code: string } {
  const r = parseDockerfile(text, { file: 'Dockerfile' });
  assert.equal(r.dockerfile, undefined);
  const d = r.diagnostics.find((x) => x.severity === 'error');
  assert.ok(d, 'expected an error diagnostic');
  assert.equal(d.file, 'Dockerfile');
  return { message: d.message, line: d.range?.start.line ?? 0, code: d.code };
}

describe('lines, comments and continuations (A1)', () => {
  it('joins continuations without inserting spaces and drops comment lines inside them', () => {
    const i = only('RUN echo a \\\n    b\\\n# comment\nc');
    assert.equal(i.kind, 'run');
    if (i.kind === 'run') assert.deepEqual(i.command, { form: 'shell', command: 'echo a     bc' });
    assert.equal(i.range.start.line, 2);
    assert.equal(i.range.end.line, 5);
  });

  it('has no trailing comments: ARG A=1 # c declares three args', () => {
    const i = only('ARG A=1 # c');
    assert.equal(i.kind, 'arg');
    if (i.kind === 'arg') assert.deepEqual(i.args.map((a) => a.key), ['A', '#', 'c']);
  });

  it('takes trailing text after JSON as shell form', () => {
    const i = only('ENTRYPOINT ["x"] # comment');
    assert.equal(i.kind, 'entrypoint');
    if (i.kind === 'entrypoint') assert.deepEqual(i.command, { form: 'shell', command: '["x"] # comment' });
    const j = only("CMD ['single', 'quotes']");
    if (j.kind === 'cmd') assert.equal(j.command.form, 'shell');
  });

  it('strips a BOM and accepts CRLF', () => {
    const df = ok('\ufeffFROM busybox\r\nRUN echo hi\r\n');
    const i = df.stages[0]!.instructions[0];
    assert.ok(i && i.kind === 'run' && i.command.form === 'shell' && i.command.command === 'echo hi');
  });

  it('keeps the keyword casing and the logical line', () => {
    const i = only('Run   echo   hi');
    assert.equal(i.keyword, 'Run');
    assert.equal(i.original, 'Run   echo   hi');
  });

  it('dumps the AST like BuildKit (flags, env triples, json)', () => {
    const r = parseRaw('FROM scratch\nCOPY --doit=true -- foo /tmp/\nENV a=b c="d e"\nCMD ["x", "y"]\nONBUILD RUN echo\n');
    assert.equal(
      dumpNodes(r.nodes),
      '(from "scratch")\n(copy ["--doit=true"] "foo" "/tmp/")\n(env "a" "b" "=" "c" "\\"d e\\"" "=")\n(cmd "x" "y")\n(onbuild (run "echo"))\n',
    );
  });
});

describe('directives (A2)', () => {
  it('switches the escape character', () => {
    const df = ok('# escape=`\nFROM scratch\nCOPY a `\n  b /dst\n');
    assert.equal(df.directives.escape, '`');
    const c = df.stages[0]!.instructions[0]!;
    if (c.kind === 'copy') assert.deepEqual([c.sources, c.dest], [['a', 'b'], '/dst']);
  });

  it('stops at the first non-directive line and records syntax/check', () => {
    const df = ok('# syntax=docker/dockerfile:1\n# check=skip=all\n\n# escape=`\nFROM scratch\n');
    assert.equal(df.directives.syntax, 'docker/dockerfile:1');
    assert.equal(df.directives.check, 'skip=all');
    assert.equal(df.directives.escape, '\\');
  });

  it('rejects duplicate and invalid escape directives', () => {
    assert.match(errorOf('# escape=`\n# escape=\\\nFROM x\n').message, /only one escape parser directive/);
    assert.match(errorOf('# escape=x\nFROM x\n').message, /invalid escape token/);
  });
});

describe('heredocs (A3)', () => {
  it('reads bodies verbatim, chomps tabs with <<-, and knows quoted names do not expand', () => {
    const df = ok('FROM scratch\nCOPY <<EOF <<-"TWO" /dir/\nhello $X\n# not a comment\nEOF\n\tindented\n\tTWO\nRUN true\n');
    const c = df.stages[0]!.instructions[0]!;
    assert.equal(c.kind, 'copy');
    if (c.kind === 'copy') {
      assert.deepEqual(c.sources, []);
      assert.deepEqual(
        c.heredocs.map((h) => [h.name, h.body, h.expand, h.chomp]),
        [
          ['EOF', 'hello $X\n# not a comment\n', true, false],
          ['TWO', 'indented\n', false, true],
        ],
      );
      assert.equal(c.dest, '/dir/');
      assert.equal(c.range.end.line, 7);
    }
    assert.equal(df.stages[0]!.instructions[1]!.kind, 'run');
  });

  it('parses file descriptors and ignores heredocs in exec form', () => {
    const r = only('RUN 3<<EOF cat /dev/fd/3\nx\nEOF');
    if (r.kind === 'run') assert.deepEqual(r.heredocs.map((h) => [h.name, h.fd]), [['EOF', 3]]);
    const e = only('RUN ["sh", "-c", "cat <<EOF"]');
    if (e.kind === 'run') assert.deepEqual(e.heredocs, []);
  });

  it('rejects unterminated heredocs and heredoc destinations', () => {
    assert.match(errorOf('FROM scratch\nRUN cat <<EOF\nbody\n').message, /unterminated heredoc/);
    assert.match(errorOf('FROM scratch\nCOPY a <<EOF\nx\nEOF\n').message, /cannot accept a heredoc as a destination/);
  });
});

describe('JSON and flags (A4, A5)', () => {
  it('decodes JSON and rejects non-string arrays', () => {
    const i = only('CMD ["echo", "\\u0041\\\\"]');
    if (i.kind === 'cmd') assert.deepEqual(i.command, { form: 'exec', argv: ['echo', 'A\\'] });
    assert.match(errorOf('FROM scratch\nCMD ["a", 1]').message, /arrays must be comprised of strings only/);
  });

  it('splits COPY/ADD/VOLUME on whitespace without quote handling', () => {
    const i = only('COPY "a b" /x');
    if (i.kind === 'copy') assert.deepEqual(i.sources, ['"a', 'b"']);
  });

  it('parses COPY flags and a bare -- ends them', () => {
    const i = only('COPY --from=Build --chown=1:2 --chmod=755 --link --parents --exclude=*.md --exclude=x -- src/ /dst');
    assert.equal(i.kind, 'copy');
    if (i.kind === 'copy') {
      assert.equal(i.from, 'Build');
      assert.equal(i.chown, '1:2');
      assert.equal(i.chmod, '755');
      assert.equal(i.link, true);
      assert.equal(i.parents, true);
      assert.deepEqual(i.exclude, ['*.md', 'x']);
    }
    const r = only('RUN -- --notaflag');
    if (r.kind === 'run') assert.deepEqual(r.command, { form: 'shell', command: '--notaflag' });
  });

  it('validates flags with suggestions', () => {
    assert.match(errorOf('FROM scratch\nCOPY --form=a x y').message, /unknown flag: form \(did you mean from\?\)/);
    assert.match(errorOf('FROM scratch\nCOPY --link= x y').message, /missing a value on flag: link/);
    assert.match(errorOf('FROM scratch\nCOPY --from=a --from=b x y').message, /duplicate flag/);
    assert.match(errorOf('FROM scratch\nCOPY --checksum=sha256:00 x y').message, /checksum can't be specified for COPY/);
  });

  it('parses RUN --mount CSV with quoted fields and validates it', () => {
    const i = only('RUN --mount=type=cache,target="/a b",sharing=locked,mode=0700 --mount=type=secret,id=tok,required --network=none true');
    assert.equal(i.kind, 'run');
    if (i.kind === 'run') {
      assert.equal(i.mounts[0]?.type, 'cache');
      assert.equal(i.mounts[0]?.target, '/a b');
      assert.equal(i.mounts[0]?.sharing, 'locked');
      assert.equal(i.mounts[0]?.mode, 0o700);
      assert.equal(i.mounts[0]?.readOnly, false);
      assert.equal(i.mounts[1]?.type, 'secret');
      assert.equal(i.mounts[1]?.required, true);
      assert.equal(i.mounts[1]?.readOnly, true);
      assert.equal(i.network, 'none');
    }
    assert.match(errorOf('FROM scratch\nRUN --mount=type=bind,mode=0700,target=/x true').message, /mode not allowed for "bind"/);
    assert.match(errorOf('FROM scratch\nRUN --mount=type=cahce,target=/x true').message, /unsupported mount type "cahce" \(did you mean cache\?\)/);
    assert.match(errorOf('FROM scratch\nRUN --mount=type=bind,from=$X,target=/x true').message, /doesn't support variable expansion/);
  });
});

describe('instruction arguments', () => {
  it('ENV/LABEL: new form, legacy form and errors (A8)', () => {
    const e = only('ENV ONE TWO= THREE=world');
    if (e.kind === 'env') assert.deepEqual([e.pairs, e.legacy], [[{ key: 'ONE', value: 'TWO= THREE=world' }], true]);
    const l = only('LABEL "com.example"="ACME" b=c\\ d');
    if (l.kind === 'label') assert.deepEqual(l.pairs, [{ key: '"com.example"', value: '"ACME"' }, { key: 'b', value: 'c\\ d' }]);
    assert.match(errorOf('FROM scratch\nENV KEY').message, /ENV must have two arguments/);
    assert.match(errorOf('FROM scratch\nENV a=1 b').message, /can't find = in "b"/);
  });

  it('FROM: names are lowercased and validated (A9)', () => {
    const df = ok('FROM --platform=$BUILDPLATFORM golang AS Build\nFROM build\n');
    assert.equal(df.stages[0]!.name, 'build');
    assert.equal(df.stages[0]!.from.platform, '$BUILDPLATFORM');
    assert.match(errorOf('FROM a AS 1x').message, /invalid name for build stage/);
    assert.match(errorOf('FROM a b').message, /either one or three arguments/);
  });

  it('HEALTHCHECK: durations in ns and the error messages of A16', () => {
    const h = only('HEALTHCHECK --interval=1m30s --timeout=3s --retries=3 CMD curl -f http://x/');
    if (h.kind === 'healthcheck') {
      assert.deepEqual(h.health, {
        type: 'cmd',
        test: ['CMD-SHELL', 'curl -f http://x/'],
        interval: 90e9,
        timeout: 3e9,
        startPeriod: 0,
        startInterval: 0,
        retries: 3,
      });
    }
    assert.match(errorOf('FROM scratch\nHEALTHCHECK NONE x').message, /HEALTHCHECK NONE takes no arguments/);
    assert.match(errorOf('FROM scratch\nHEALTHCHECK CONNECT x').message, /Unknown type "CONNECT" in HEALTHCHECK \(try CMD\)/);
    assert.match(errorOf('FROM scratch\nHEALTHCHECK CMD').message, /Missing command after HEALTHCHECK CMD/);
    assert.match(errorOf('FROM scratch\nHEALTHCHECK --interval=1us CMD x').message, /cannot be less than 1ms/);
  });

  it('ONBUILD keeps the trigger text with heredocs and rejects chaining', () => {
    const o = only('ONBUILD RUN <<EOF\necho hi\nEOF');
    if (o.kind === 'onbuild') {
      assert.equal(o.trigger.kind, 'run');
      assert.equal(o.expression, 'RUN <<EOF\necho hi\nEOF');
    }
    assert.match(errorOf('FROM scratch\nONBUILD ONBUILD RUN x').message, /Chaining ONBUILD/);
    assert.match(errorOf('FROM scratch\nONBUILD FROM x').message, /FROM isn't allowed as an ONBUILD trigger/);
  });

  it('SHELL must be JSON', () => {
    assert.match(errorOf('FROM scratch\nSHELL /bin/bash -c').message, /SHELL requires the arguments to be in JSON form/);
  });
});

describe('bad input gives diagnostics, never a throw', () => {
  it('unknown instruction with suggestion, at its line', () => {
    const e = errorOf('FROM scratch\n\nRUNN echo');
    assert.match(e.message, /unknown instruction: RUNN \(did you mean run\?\)/);
    assert.equal(e.line, 3);
    assert.equal(e.code, 'dockerfile/unknown-instruction');
  });

  it('empty, comment-only, binary and huge inputs', () => {
    assert.match(errorOf('').message, /cannot be empty/);
    assert.match(errorOf('# only\n# comments\n').message, /file with no instructions/);
    assert.match(errorOf('RUN x\n').message, /no build stage/);
    const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)).toString('latin1');
    const g = parseDockerfile(garbage, { file: 'g' });
    assert.equal(g.dockerfile, undefined);
    assert.ok(g.diagnostics.length > 0);
    assert.match(errorOf(`FROM scratch\nRUN ${'x'.repeat(70000)}\n`).message, /greater than max allowed size of 65535/);
  });

  it('reports every bad instruction, not only the first', () => {
    const r = parseDockerfile('FROM scratch\nFOO\nBAR\n', { file: 'D' });
    assert.deepEqual(r.diagnostics.map((d) => d.range?.start.line), [2, 3]);
  });
});

describe('speed', () => {
  it('parses 500 thirty-line Dockerfiles', () => {
    const text = [
      'ARG BASE=alpine:3.19',
      'FROM $BASE AS build',
      'RUN --mount=type=cache,target=/root/.cache apk add --no-cache \\',
      '    build-base git',
      'WORKDIR /src',
      'COPY --chown=1000:1000 go.mod go.sum ./',
      'ENV CGO_ENABLED=0 GOOS=linux',
      ...Array.from({ length: 18 }, (_, i) => `RUN echo step ${i} && ls /src`),
      'FROM scratch',
      'COPY --from=build /src/app /app',
      'EXPOSE 8080/tcp',
      'USER 65532',
      'ENTRYPOINT ["/app"]',
    ].join('\n');
    let stages = 0;
    for (let i = 0; i < 500; i++) stages += ok(text + `\nLABEL n=${i}\n`).stages.length;
    assert.equal(stages, 1000);
  });
});

describe('ADD --checksum', () => {
  it('accepts one URL source, rejects local or multiple sources', () => {
    const a = only('ADD --checksum=sha256:abc https://example.com/x.tar.gz /x');
    if (a.kind === 'add') assert.equal(a.checksum, 'sha256:abc');
    assert.match(errorOf('FROM scratch\nADD --checksum=sha256:abc local.txt /x').message, /non-HTTP\(S\) sources/);
    assert.match(errorOf('FROM scratch\nADD --checksum=sha256:abc https://a/1 https://a/2 /x/').message, /multiple sources/);
  });
});

it('goQuote writes every ASCII character as Go strconv.Quote does', async () => {
  const { goQuote } = await import('../../src/dockerfile/ast.js');
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 34: '\\"', 92: '\\\\' };
  for (let c = 0; c < 0x80; c++) {
    const ch = String.fromCharCode(c);
    const want = named[c] ?? (c < 0x20 || c === 0x7f ? `\\x${c.toString(16).padStart(2, '0')}` : ch);
    assert.equal(goQuote(`a${ch}b`), `"a${want}b"`, `character ${c}`);
  }
  assert.equal(goQuote('--service svc-1'), '"--service svc-1"');
  assert.equal(goQuote('é\u00a0\ud83d\ude00'), '"é\\u00a0😀"');
});
