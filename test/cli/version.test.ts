import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

test('stowage --version prints the package version', () => {
  const out = execFileSync('./bin/stowage', ['--version'], { encoding: 'utf8' });
  assert.equal(out.trim(), `stowage ${pkg.version}`);
});

test('an unknown command is a usage error (exit 2) with no stack trace', () => {
  const r = spawnSync('./bin/stowage', ['bogus'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown command "bogus"/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});
