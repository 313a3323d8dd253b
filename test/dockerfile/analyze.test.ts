import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeDockerfile } from '../../src/dockerfile/analyze.js';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import type { Dockerfile } from '../../src/dockerfile/types.js';

const platform = { os: 'linux', architecture: 'amd64' };

function parse(text: string): Dockerfile {
  const r = parseDockerfile(text, { file: 'Dockerfile' });
  assert.deepEqual(r.diagnostics, []);
  return r.dockerfile!;
}

function analyze(text: string, opts: { target?: string; buildArgs?: Record<string, string> } = {}) {
  return analyzeDockerfile(parse(text), { buildArgs: opts.buildArgs ?? {}, platform, ...(opts.target !== undefined ? { target: opts.target } : {}) });
}

const multi = [
  'ARG GO=1.22',
  'ARG BASE=alpine:${GO}',
  'FROM --platform=$BUILDPLATFORM golang:${GO} AS Build',
  'RUN --mount=type=cache,target=/root/.cache go build',
  'FROM $BASE AS unused',
  'RUN exit 1',
  'FROM scratch AS tools',
  'COPY --from=busybox:1.36 /bin/busybox /busybox',
  'FROM build AS test',
  'RUN --mount=type=bind,from=tools,target=/t true',
  'FROM scratch',
  'COPY --from=BUILD /out /app',
  'COPY --from=2 /busybox /bin/',
].join('\n');

describe('analyzeDockerfile', () => {
  it('builds only what the target needs, dependencies first', () => {
    const a = analyze(multi);
    assert.deepEqual(a.diagnostics, []);
    assert.equal(a.target, 4);
    assert.deepEqual(a.stages.map((s) => s.index), [0, 2, 4]);
    const final = a.stages.find((s) => s.index === 4)!;
    assert.deepEqual(final.base, { kind: 'scratch' });
    assert.deepEqual(final.dependsOn, [0, 2]);
    assert.deepEqual(a.stages.find((s) => s.index === 2)!.externalImages, ['busybox:1.36']);
  });

  it('expands FROM and --platform with meta args and build args', () => {
    const a = analyze(multi, { target: 'unused', buildArgs: { GO: '1.21' } });
    assert.deepEqual(a.stages.map((s) => s.base), [{ kind: 'image', ref: 'alpine:1.21' }]);
    const b = analyze(multi, { target: 'BUILD' });
    assert.deepEqual(b.stages[0]!.base, { kind: 'image', ref: 'golang:1.22' });
    assert.deepEqual(b.stages[0]!.platform, { os: 'linux', architecture: 'amd64' });
  });

  it('follows FROM <stage> and RUN --mount from=', () => {
    const a = analyze(multi, { target: 'test' });
    assert.deepEqual(a.stages.map((s) => s.index), [0, 2, 3]);
    assert.deepEqual(a.stages[2]!.base, { kind: 'stage', index: 0 });
    assert.deepEqual(a.stages[2]!.dependsOn, [0, 2]);
  });

  it('follows ONBUILD COPY --from of a base stage into the child', () => {
    const a = analyze('FROM scratch AS assets\nFROM scratch AS base\nONBUILD COPY --from=assets / /\nFROM base\n');
    assert.deepEqual(a.stages.map((s) => s.index), [0, 1, 2]);
    assert.deepEqual(a.stages[2]!.dependsOn, [0, 1]);
  });

  it('reports unknown targets, bad --from references and blank bases', () => {
    const e = (text: string, target?: string) => {
      const a = analyze(text, target !== undefined ? { target } : {});
      assert.equal(a.target, -1);
      return a.diagnostics.find((d) => d.severity === 'error')!;
    };
    assert.match(e(multi, 'tset').message, /target stage "tset" could not be found/);
    assert.match(e(multi, 'tset').hint ?? '', /test/);
    assert.match(e('FROM scratch\nCOPY --from=5 / /\n').message, /invalid stage index 5/);
    assert.match(e('FROM scratch\nCOPY --from=0 / /\n').message, /needs to be defined before current stage/);
    assert.match(e('FROM scratch\nCOPY --from=later / /\nFROM scratch AS later\n', '').message, /needs to be defined before current stage/);
    assert.match(e('ARG X=a\nFROM scratch\nCOPY --from=$X / /\n').message, /variable expansion is not supported for --from/);
    const blank = e('ARG IMG\nFROM $IMG\n');
    assert.match(blank.message, /base name \(\$IMG\) should not be blank/);
    assert.equal(blank.range?.start.line, 2);
    assert.match(e('FROM --platform=$NOPE scratch\n').message, /empty platform value/);
  });

  it('collects declared args and warns about unconsumed build args', () => {
    const a = analyze('ARG A\nFROM scratch\nARG B\nONBUILD ARG C\n', { buildArgs: { A: '1', Z: '2', HTTP_PROXY: 'x', TARGETARCH: 'arm64' } });
    assert.deepEqual([...a.declaredArgs].sort(), ['A', 'B', 'C']);
    assert.deepEqual(a.unusedBuildArgs, ['Z']);
    assert.ok(a.diagnostics.some((d) => d.severity === 'warning' && d.message.includes('[Z]')));
  });
});
