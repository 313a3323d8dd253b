import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import {
  applyMetadataInstruction,
  expandInStage,
  goDuration,
  historyFor,
  initialStageState,
  runArgv,
  runEnvironment,
  type MetadataResult,
  type StageState,
} from '../../src/dockerfile/stage-env.js';
import type { Dockerfile, Instruction } from '../../src/dockerfile/types.js';
import type { ImageConfig } from '../../src/image/types.js';

const platform = { os: 'linux', architecture: 'arm64' };

function parse(text: string): Dockerfile {
  const r = parseDockerfile(text, { file: 'Dockerfile' });
  assert.deepEqual(r.diagnostics, []);
  return r.dockerfile!;
}

interface Run {
  state: StageState;
  results: MetadataResult[];
  config: ImageConfig['config'];
}

/** Drive a stage the way the builder does: metadata instructions through the step function. */
function runStage(text: string, opts: { buildArgs?: Record<string, string>; base?: ImageConfig; stage?: number; inherited?: StageState } = {}): Run {
  const df = parse(text);
  const stage = df.stages[opts.stage ?? df.stages.length - 1]!;
  const base: ImageConfig = opts.base ?? { architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: {} } as ImageConfig;
  let state = initialStageState({ baseConfig: base, inherited: opts.inherited, buildArgs: opts.buildArgs ?? {}, platform, metaArgs: df.metaArgs, stage });
  let config = { ...state.config };
  const results: MetadataResult[] = [];
  for (const i of stage.instructions) {
    if (i.kind === 'run' || i.kind === 'copy' || i.kind === 'add') continue;
    const r = applyMetadataInstruction(state, i, { platform });
    results.push(r);
    state = r.state;
    config = { ...config, ...(r.configPatch ?? {}) };
  }
  return { state, results, config };
}

function firstOf(text: string, kind: Instruction['kind']): Instruction {
  const df = parse(text);
  const i = df.stages[df.stages.length - 1]!.instructions.find((x) => x.kind === kind);
  assert.ok(i);
  return i;
}

describe('ENV (A6, A8)', () => {
  it('uses one snapshot per instruction and updates in place', () => {
    const { config, results } = runStage('FROM scratch\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\n');
    assert.deepEqual(config?.Env, [`PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`, 'abc=bye', 'def=hello', 'ghi=bye']);
    assert.equal(results[1]?.createdBy, 'ENV abc=bye def=hello');
    assert.equal(results[1]?.emptyLayer, true);
  });

  it('removes quotes, keeps single-quoted $ literal, and keeps the base env order', () => {
    const base = { architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { Env: ['PATH=/bin', 'A=1'] } } as ImageConfig;
    const { config } = runStage(`FROM x\nENV A="x y" B='$HOME' PATH=/sbin:$PATH\n`, { base });
    assert.deepEqual(config?.Env, ['PATH=/sbin:/bin', 'A=x y', 'B=$HOME']);
  });

  it('legacy form takes the rest of the line as the value', () => {
    const { config } = runStage('FROM scratch\nENV ONE TWO= THREE=world\n');
    assert.ok(config?.Env?.includes('ONE=TWO= THREE=world'));
  });
});

describe('ARG scoping (A7)', () => {
  const text = 'ARG VERSION=1.0\nARG NAME=app\nFROM scratch\nARG VERSION\nARG NAME="$NAME-dev"\nARG EMPTY\nARG TARGETARCH\nENV V=$VERSION N=$NAME E=${EMPTY-unset} T=$TARGETARCH\n';

  it('meta args are visible only after redeclaration; a default is expanded with the stage env', () => {
    const { config } = runStage(text);
    const env = config?.Env ?? [];
    assert.ok(env.includes('V=1.0'), env.join(' '));
    assert.ok(env.includes('N=-dev'), env.join(' '));
    assert.ok(env.includes('E=unset'));
    assert.ok(env.includes('T=arm64'));
  });

  it('build args win over defaults and meta args', () => {
    const { config } = runStage(text, { buildArgs: { VERSION: '2.0', NAME: 'x' } });
    assert.ok(config?.Env?.includes('V=2.0'));
    assert.ok(config?.Env?.includes('N=x'));
  });

  it('meta args are not visible without redeclaration', () => {
    const { state } = runStage('ARG X=1\nFROM scratch\nENV Y=$X\n');
    assert.equal(expandInStage(state, '${X:-none}'), 'none');
  });

  it('ARGs go to RUN env and RUN history, but not to the image env; ENV wins over ARG', () => {
    const df = parse('FROM scratch\nARG A=1\nARG B\nENV B=env\nRUN echo $A\n');
    const { state, config } = runStage('FROM scratch\nARG A=1\nARG B\nENV B=env\nRUN echo $A\n');
    const run = df.stages[0]!.instructions[3]!;
    assert.equal(run.kind, 'run');
    if (run.kind !== 'run') return;
    assert.ok(!config?.Env?.some((e) => e.startsWith('A=')));
    assert.ok(runEnvironment(state).includes('A=1'));
    assert.ok(runEnvironment(state).includes('B=env'));
    assert.equal(historyFor(run, state), 'RUN |2 A=1 B=env /bin/sh -c echo $A # buildkit');
    assert.deepEqual(runArgv(run, state), ['/bin/sh', '-c', 'echo $A']);
  });

  it('ARGs are inherited by stages built FROM this stage', () => {
    const parent = runStage('FROM scratch AS base\nARG A=1\nFROM base\n', { stage: 0 });
    const child = runStage('FROM scratch AS base\nARG A=1\nFROM base\nENV B=$A\n', { stage: 1, inherited: parent.state });
    assert.ok(child.config?.Env?.includes('B=1'));
  });

  it('proxy build args reach RUN without ARG', () => {
    const { state } = runStage('FROM scratch\n', { buildArgs: { HTTP_PROXY: 'http://p:3128', OTHER: 'x' } });
    assert.ok(runEnvironment(state).includes('HTTP_PROXY=http://p:3128'));
    assert.ok(!runEnvironment(state).some((e) => e.startsWith('OTHER=')));
  });
});

describe('CMD / ENTRYPOINT / SHELL (A4, A14, A15)', () => {
  it('ENTRYPOINT resets an inherited CMD', () => {
    const base = { architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { Cmd: ['sh'] } } as ImageConfig;
    const { config, results } = runStage('FROM x\nENTRYPOINT ["/app"]\n', { base });
    assert.deepEqual(config?.Entrypoint, ['/app']);
    assert.equal(config?.Cmd, null);
    assert.equal(results[0]?.createdBy, 'ENTRYPOINT ["/app"]');
  });

  it('keeps a CMD set earlier in the same stage, wraps shell form with the current SHELL', () => {
    const { config, results } = runStage('FROM scratch\nCMD echo hi\nSHELL ["/bin/bash", "-c"]\nENTRYPOINT exec app\n');
    assert.deepEqual(config?.Cmd, ['/bin/sh', '-c', 'echo hi']);
    assert.equal(config?.ArgsEscaped, true);
    assert.deepEqual(config?.Entrypoint, ['/bin/bash', '-c', 'exec app']);
    assert.equal(results[0]?.createdBy, 'CMD ["/bin/sh" "-c" "echo hi"]');
    assert.equal(results[1]?.createdBy, 'SHELL [/bin/bash -c]');
  });

  it('ENTRYPOINT [] clears the entrypoint', () => {
    const { config } = runStage('FROM scratch\nENTRYPOINT []\n');
    assert.equal(config?.Entrypoint, null);
  });
});

describe('other config instructions', () => {
  it('WORKDIR resolves relative paths, expands, and is a layer unless /', () => {
    const { config, results } = runStage('FROM scratch\nENV D=sub\nWORKDIR /a\nWORKDIR $D/../b/\nWORKDIR $NOPE\nWORKDIR /\n');
    assert.deepEqual(results.slice(1).map((r) => [r.createdBy, r.emptyLayer]), [
      ['WORKDIR /a', false],
      ['WORKDIR /a/b', false],
      ['WORKDIR /a/b', false],
      ['WORKDIR /', true],
    ]);
    assert.equal(config?.WorkingDir, '/');
  });

  it('EXPOSE sorts, expands, lowercases and expands ranges', () => {
    const { config, results } = runStage('FROM scratch\nENV P=5000\nEXPOSE $P 2375 1234/UDP 7000-7001\n');
    assert.deepEqual(Object.keys(config?.ExposedPorts ?? {}).sort(), ['1234/udp', '2375/tcp', '5000/tcp', '7000/tcp', '7001/tcp']);
    assert.equal(results[1]?.createdBy, 'EXPOSE [1234/udp 2375/tcp 5000/tcp 7000/tcp 7001/tcp]');
  });

  it('HEALTHCHECK stores nanoseconds; VOLUME/LABEL/USER/STOPSIGNAL expand', () => {
    const { config, results } = runStage(
      'FROM scratch\nENV U=app V=/data\nHEALTHCHECK --interval=30s CMD ["true"]\nVOLUME $V /logs\nLABEL "k"="$U v"\nUSER $U\nSTOPSIGNAL SIGKILL\n',
    );
    assert.deepEqual(config?.Healthcheck, { Test: ['CMD', 'true'], Interval: 30e9, Timeout: 0, StartPeriod: 0, StartInterval: 0, Retries: 0 });
    assert.equal(results[1]?.createdBy, 'HEALTHCHECK {Test:[CMD true] Interval:30s Timeout:0s StartPeriod:0s StartInterval:0s Retries:0}');
    assert.deepEqual(Object.keys(config?.Volumes ?? {}), ['/data', '/logs']);
    assert.deepEqual(config?.Labels, { k: 'app v' });
    assert.equal(config?.User, 'app');
    assert.equal(config?.StopSignal, 'SIGKILL');
  });

  it('rejects invalid signals with the instruction range', () => {
    const df = parse('FROM scratch\nSTOPSIGNAL NOPE\n');
    const st = initialStageState({ baseConfig: { architecture: 'arm64', os: 'linux' } as ImageConfig, buildArgs: {}, platform, metaArgs: [] });
    assert.throws(
      () => applyMetadataInstruction(st, df.stages[0]!.instructions[0]!),
      (e: { code?: string; range?: { start: { line: number } } }) => e.code === 'dockerfile/bad-signal' && e.range?.start.line === 2,
    );
  });

  it('ONBUILD appends trigger text without history; MAINTAINER sets author', () => {
    const { config, results } = runStage('FROM scratch\nONBUILD COPY . /src\nONBUILD RUN make\nMAINTAINER me\n');
    assert.deepEqual(config?.OnBuild, ['COPY . /src', 'RUN make']);
    assert.equal(results[0]?.createdBy, undefined);
    assert.equal(results[2]?.author, 'me');
    assert.equal(results[2]?.createdBy, 'MAINTAINER me');
  });
});

describe('COPY/ADD history (A10)', () => {
  it('omits --from and --link, expands, lists heredocs', () => {
    const i = firstOf('FROM scratch AS a\nFROM scratch\nENV O=1000\nCOPY --from=a --link --chown=$O:$O --chmod=644 x <<EOF /d/\nhi\nEOF\n', 'copy');
    const { state } = runStage('FROM scratch\nENV O=1000\n');
    if (i.kind === 'copy') assert.equal(historyFor(i, state), 'COPY --chown=1000:1000 --chmod=644 x <<EOF /d/ # buildkit');
  });
});

describe('goDuration', () => {
  it('formats like Go', () => {
    assert.equal(goDuration(90e9), '1m30s');
    assert.equal(goDuration(3600e9 + 1.5e9), '1h0m1.5s');
    assert.equal(goDuration(5e6), '5ms');
  });
});

describe('RUN heredocs (A3)', () => {
  const st = initialStageState({ baseConfig: { architecture: 'arm64', os: 'linux' } as ImageConfig, buildArgs: {}, platform, metaArgs: [] });
  const run = (text: string) => {
    const i = parse(`FROM scratch\n${text}`).stages[0]!.instructions[0]!;
    assert.equal(i.kind, 'run');
    return i as Extract<Instruction, { kind: 'run' }>;
  };
  it('a whole-command heredoc becomes the command; with #! it is a script file; else the shell gets it all', () => {
    assert.deepEqual(runArgv(run('RUN <<-EOF\n\techo a\n\techo b\nEOF\n'), st), ['/bin/sh', '-c', 'echo a\necho b\n']);
    assert.deepEqual(runArgv(run('RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n'), st), ['/bin/sh', '-c', '/dev/pipes/EOF']);
    assert.deepEqual(runArgv(run('RUN cat <<A > /a && cat <<B > /b\na\nA\nb\nB\n'), st), ['/bin/sh', '-c', 'cat <<A > /a && cat <<B > /b\na\nA\nb\nB']);
  });
});

describe('resolveRunMounts (A21)', () => {
  it('expands values, joins relative targets to WORKDIR and fills defaults', async () => {
    const { resolveRunMounts } = await import('../../src/dockerfile/stage-env.js');
    const text = 'FROM scratch\nARG CACHE=go\nWORKDIR /src\nRUN --mount=type=cache,target=.cache/$CACHE --mount=type=secret,id=npm --mount=type=ssh true\n';
    const df = parse(text);
    const { state } = runStage(text);
    const run = df.stages[0]!.instructions[2]!;
    assert.equal(run.kind, 'run');
    if (run.kind !== 'run') return;
    const [cache, secret, ssh] = resolveRunMounts(run, state);
    assert.deepEqual([cache?.target, cache?.id, cache?.sharing, cache?.mode], ['/src/.cache/go', '/src/.cache/go', 'shared', 0o755]);
    assert.deepEqual([secret?.target, secret?.mode, secret?.required, secret?.readOnly], ['/run/secrets/npm', 0o400, false, true]);
    assert.deepEqual([ssh?.id, ssh?.target, ssh?.mode], ['default', '/run/buildkit/ssh_agent.0', 0o600]);
  });
});
