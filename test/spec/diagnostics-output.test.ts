import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderGithub, renderHuman, renderJson, renderSarif } from '../../src/cli/diagnostics-output.js';
import type { Diagnostic } from '../../src/util/errors.js';

const diags: Diagnostic[] = [
  { file: 'specs/stowage.yaml', range: { start: { line: 2, column: 5 }, end: { line: 2, column: 11 } }, severity: 'error', code: 'spec/unknown-key', message: "unknown key 'contxt' in images.app", hint: "did you mean 'context'?" },
  { file: 'dir,with:odd%chars/Dockerfile', range: { start: { line: 1, column: 1 }, end: { line: 1, column: 5 } }, severity: 'warning', code: 'dockerfile/x', message: 'two\nlines 100%' },
  { severity: 'error', code: 'spec/unknown-var', message: 'no location' },
];
const source = 'images:\n    contxt: .\n';

test('human: location, severity[code], code frame with caret under the range, hint', () => {
  const out = renderHuman(diags, { color: false, readSource: (f) => (f === 'specs/stowage.yaml' ? source : undefined) });
  const lines = out.split('\n');
  assert.equal(lines[0], "specs/stowage.yaml:2:5: error[spec/unknown-key]: unknown key 'contxt' in images.app");
  assert.equal(lines[2], '2 |     contxt: .');
  assert.equal(lines[3], '  |     ^^^^^^');
  assert.equal(lines[4], "  hint: did you mean 'context'?");
  assert.ok(out.includes('error[spec/unknown-var]: no location'));
  assert.ok(out.trimEnd().endsWith('2 errors, 1 warning'));
  assert.ok(!out.includes('\x1b['), 'no colour codes when color is false');
  assert.ok(renderHuman(diags, { color: true, readSource: () => source }).includes('\x1b[31m'));
});

test('json: one flat object per diagnostic', () => {
  const parsed = JSON.parse(renderJson(diags)) as { diagnostics: Record<string, unknown>[] };
  assert.deepEqual(parsed.diagnostics[0], { file: 'specs/stowage.yaml', line: 2, column: 5, endLine: 2, endColumn: 11, severity: 'error', code: 'spec/unknown-key', message: "unknown key 'contxt' in images.app", hint: "did you mean 'context'?" });
  assert.equal(parsed.diagnostics[2]!.line, null);
});

test('sarif: 2.1.0 shape with rules, levels and regions', () => {
  const log = JSON.parse(renderSarif(diags, { toolVersion: '0.1.0' })) as any;
  assert.equal(log.version, '2.1.0');
  assert.equal(log.runs.length, 1);
  assert.equal(log.runs[0].columnKind, 'utf16CodeUnits');
  const driver = log.runs[0].tool.driver;
  assert.equal(driver.name, 'stowage');
  assert.equal(driver.version, '0.1.0');
  assert.deepEqual(driver.rules.map((r: { id: string }) => r.id), ['dockerfile/x', 'spec/unknown-key', 'spec/unknown-var']);
  const [r0, r1, r2] = log.runs[0].results;
  assert.equal(r0.ruleId, 'spec/unknown-key');
  assert.equal(driver.rules[r0.ruleIndex].id, r0.ruleId);
  assert.equal(r0.level, 'error');
  assert.equal(r1.level, 'warning');
  assert.deepEqual(r0.locations[0].physicalLocation, { artifactLocation: { uri: 'specs/stowage.yaml' }, region: { startLine: 2, startColumn: 5, endLine: 2, endColumn: 11 } });
  assert.equal(r1.locations[0].physicalLocation.artifactLocation.uri, 'dir%2Cwith%3Aodd%25chars/Dockerfile');
  assert.equal(r2.locations, undefined);
  assert.match(r0.message.text, /hint: did you mean/);
});

test('github: workflow commands with escaping of data and properties', () => {
  const lines = renderGithub(diags).trimEnd().split('\n');
  assert.equal(lines.length, 3, 'newlines inside messages are escaped, one command per line');
  assert.equal(lines[0], "::error file=specs/stowage.yaml,line=2,col=5,endLine=2,endColumn=11,title=spec/unknown-key::unknown key 'contxt' in images.app%0Ahint: did you mean 'context'?");
  assert.equal(lines[1], '::warning file=dir%2Cwith%3Aodd%25chars/Dockerfile,line=1,col=1,endLine=1,endColumn=5,title=dockerfile/x::two%0Alines 100%25');
  assert.equal(lines[2], '::error title=spec/unknown-var::no location');
});
