import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { workspace, summary } from './helpers.js';

const ws = workspace({ 'example/Dockerfile': 'FROM scratch\n' });
after(() => ws.cleanup());

test('mangled specs never throw: every outcome is a spec or error diagnostics', async () => {
  const original = readFileSync(fileURLToPath(new URL('../../specs/stowage.yaml', import.meta.url)), 'utf8');
  const alphabet = ['{', '}', '[', ']', ':', '-', ' ', '\n', '\t', '"', "'", '&a', '*a', '${{', '}}', '#', 'x', '!!map', '? ', '|'];
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 60; i++) {
    let text = original;
    for (let k = 0; k < 1 + rand(4); k++) {
      const at = rand(text.length);
      text = rand(2) === 0 ? text.slice(0, at) + alphabet[rand(alphabet.length)]! + text.slice(at) : text.slice(0, at) + text.slice(at + 1 + rand(8));
    }
    const r = await ws.load(text);
    if (!r.spec) assert.ok(r.diagnostics.some((d) => d.severity === 'error'), `no spec but no error for:\n${text}\n${summary(r.diagnostics)}`);
    for (const d of r.diagnostics) {
      assert.equal(typeof d.message, 'string');
      if (d.range) assert.ok(d.range.start.line >= 1 && d.range.start.column >= 1, `bad range ${JSON.stringify(d.range)} for ${d.code}`);
    }
  }
});
