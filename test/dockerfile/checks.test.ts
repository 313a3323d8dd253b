import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isIgnored, looksLikeSecret, runBuildChecks } from '../../src/dockerfile/checks.js';

function checks(text: string, opts: Parameters<typeof runBuildChecks>[1] = {}): string[] {
  return runBuildChecks(text, { file: 'Dockerfile', ...opts }).map((d) => `${d.code}@${d.range?.start.line}: ${d.message}`);
}

describe('runBuildChecks (A25)', () => {
  it('casing rules fire on the right lines', () => {
    assert.deepEqual(checks('FROM scratch AS BadName\nfrom scratch AS base2\nCOPY a b\nCOPY a c\n'), [
      "ConsistentInstructionCasing@2: Command 'from' should match the case of the command majority (uppercase)",
      "FromAsCasing@2: 'AS' and 'from' keywords' casing do not match",
      "StageNameCasing@1: Stage name 'BadName' should be lowercase",
    ]);
  });

  it('stage name rules', () => {
    assert.deepEqual(checks('FROM scratch AS scratch\nFROM scratch AS b\nFROM scratch AS b\n'), [
      'ReservedStageName@1: Stage name should not use the same name as reserved stage "scratch"',
      'DuplicateStageName@3: Duplicate stage name "b", stage names should be unique',
    ]);
  });

  it('NoEmptyContinuation is reported at the end of the instruction', () => {
    assert.deepEqual(checks('FROM scratch\nCOPY a \\\n\n  b\n'), ['NoEmptyContinuation@4: Empty continuation line']);
  });

  it('JSONArgsRecommended unless a SHELL is set (also in a base stage)', () => {
    assert.deepEqual(checks('FROM scratch\nCMD run me\n'), [
      'JSONArgsRecommended@2: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals',
    ]);
    assert.deepEqual(checks('FROM scratch AS a\nSHELL ["/bin/bash", "-c"]\nFROM a\nENTRYPOINT run me\n'), []);
  });

  it('UndefinedVar with suggestions, only in stages the target reaches', () => {
    const text = 'FROM scratch AS first\nCOPY $foo .\nFROM scratch\nARG DIR_ASSETS=/a\nENV PATH=$PATH:/x\nCOPY $DIR_ASSET /\n';
    assert.deepEqual(checks(text), ["UndefinedVar@6: Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)"]);
    assert.deepEqual(checks(text, { target: 'first' }), ["UndefinedVar@2: Usage of undefined variable '$foo'"]);
  });

  it('FROM argument rules', () => {
    assert.deepEqual(checks('FROM --platform=$BULIDPLATFORM scratch\n'), [
      "UndefinedArgInFrom@1: FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)",
    ]);
    assert.deepEqual(checks('ARG TAG\nFROM busybox:$TAG\n'), [
      'InvalidDefaultArgInFrom@2: Default value for ARG busybox:$TAG results in empty or invalid base image name',
    ]);
    assert.deepEqual(checks('ARG TAG=1.36\nFROM busybox:$TAG\n'), []);
    assert.deepEqual(checks('FROM --platform=$TARGETPLATFORM scratch\n'), [
      'RedundantTargetPlatform@1: Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior',
    ]);
    assert.deepEqual(checks('FROM --platform=linux/arm64 scratch AS build-arm64\nFROM --platform=linux/arm64 scratch AS x\n'), [
      'FromPlatformFlagConstDisallowed@2: FROM --platform flag should not use constant value "linux/arm64"',
    ]);
  });

  it('instruction rules: maintainer, legacy key/value, secrets, expose, workdir', () => {
    assert.deepEqual(
      checks('FROM scratch\nMAINTAINER me\nENV k v\nARG GITHUB_TOKEN PUBLIC_KEY\nEXPOSE 80/TCP 127.0.0.1:8080:80\nWORKDIR app\n'),
      [
        'MaintainerDeprecated@2: Maintainer instruction is deprecated in favor of using label',
        '"LegacyKeyValueFormat@3: "ENV key=value" should be used instead of legacy "ENV key value" format'.slice(1),
        'SecretsUsedInArgOrEnv@4: Do not use ARG or ENV instructions for sensitive data (ARG "GITHUB_TOKEN")',
        "ExposeInvalidFormat@5: EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:8080:80'",
        "ExposeProtoCasing@5: Defined protocol '80/TCP' in EXPOSE instruction should be lowercase",
        'WorkdirRelativePath@6: Relative workdir "app" can have unexpected results if the base image changes',
      ],
    );
  });

  it('honours # check= directives, local check comments and BUILDKIT_DOCKERFILE_CHECK', () => {
    const text = 'FROM scratch as base\nMAINTAINER me\n';
    assert.deepEqual(checks('#check=skip=all\n' + text), []);
    assert.deepEqual(checks('# check=skip=FromAsCasing\n' + text), ['MaintainerDeprecated@3: Maintainer instruction is deprecated in favor of using label']);
    assert.deepEqual(checks('FROM scratch\n# check=skip=MaintainerDeprecated // ok here\nMAINTAINER me\nMAINTAINER you\n'), [
      'MaintainerDeprecated@4: Maintainer instruction is deprecated in favor of using label',
    ]);
    const errors = runBuildChecks('# check=error=true\n' + text);
    assert.ok(errors.length > 0 && errors.every((d) => d.severity === 'error'));
    assert.deepEqual(checks('#check=skip=all\n' + text, { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=FromAsCasing' } }), [
      'MaintainerDeprecated@3: Maintainer instruction is deprecated in favor of using label',
    ]);
  });

  it('experimental InvalidDefinitionDescription only when enabled', () => {
    const text = '# check=experimental=InvalidDefinitionDescription\n# bar is the bar\nARG foo=1\n# foo2 describes it\nARG foo2\nFROM scratch\n';
    assert.deepEqual(checks(text), ['InvalidDefinitionDescription@3: Comment for ARG should follow the format: `# foo <description>`']);
    assert.deepEqual(checks(text.replace(/^.*\n/, '')), []);
  });

  it('CopyIgnoredFile with .dockerignore patterns; not for --from', () => {
    const text = 'FROM scratch AS a\nCOPY secret.txt /\nADD ./dist/app.js /\nCOPY --from=a secret.txt /x\n';
    assert.deepEqual(checks(text, { dockerignore: ['*.txt', 'dist', '!dist/keep'] }), [
      'CopyIgnoredFile@2: Attempting to Copy file "secret.txt" that is excluded by .dockerignore',
      'CopyIgnoredFile@3: Attempting to Add file "./dist/app.js" that is excluded by .dockerignore',
    ]);
  });

  it('keeps warnings found before a parse error and never throws on garbage', () => {
    assert.deepEqual(checks('FROM scratch AS Bad\nBADCMD\n'), ["StageNameCasing@1: Stage name 'Bad' should be lowercase"]);
    assert.deepEqual(checks('\u0000\u0001\u00ff'), []);
  });
});

describe('helpers', () => {
  it('looksLikeSecret', () => {
    for (const s of ['password', 'SUPER_Secret', 'git_key', 'apikey', 'x_auth']) assert.equal(looksLikeSecret(s), true, s);
    for (const s of ['PUBLIC_KEY', 'password_file', 'AUTH_MODULE_VERSION', 'sunflower', 'keyboard']) assert.equal(looksLikeSecret(s), false, s);
  });

  it('isIgnored: last match wins, parents count, ** spans directories', () => {
    assert.equal(isIgnored('dir/a/b', ['dir']), true);
    assert.equal(isIgnored('dir/keep', ['dir/*', '!dir/keep']), false);
    assert.equal(isIgnored('a/b/c.log', ['**/*.log']), true);
    assert.equal(isIgnored('c.log', ['**/*.log']), true);
    assert.equal(isIgnored('src/main.go', ['*.go']), false);
  });
});
