import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseFastYaml } from '../../src/spec/yaml-fast.js';
import { parseYaml, parseYamlWithLibrary, type DataPath, type ParsedYaml } from '../../src/spec/yaml.js';

/** Every data path in `value` (maps and lists, all depths), plus a few that do not exist. */
function pathsOf(value: unknown, base: DataPath = []): DataPath[] {
  const out: DataPath[] = [base, [...base, 'no-such-key'], [...base, 7]];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...pathsOf(v, [...base, i])));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...pathsOf(v, [...base, k]));
  return out;
}

/** The fast reader either declines or agrees with the library on data, diagnostics and every location. */
function assertAgrees(text: string): boolean {
  const lib = parseYamlWithLibrary(text, 'spec.yaml');
  const fast = parseFastYaml(text);
  if (!fast) {
    assert.deepEqual(parseYaml(text, 'spec.yaml').diagnostics, lib.diagnostics);
    return false;
  }
  const ours: ParsedYaml = parseYaml(text, 'spec.yaml');
  assert.deepEqual(lib.diagnostics, [], `the fast reader accepted YAML the library complains about:\n${text}`);
  assert.deepEqual(ours.diagnostics, []);
  assert.deepStrictEqual(ours.value, lib.value, `data differs for:\n${text}`);
  for (const p of pathsOf(lib.value)) {
    assert.deepStrictEqual(ours.locate(p), lib.locate(p), `locate(${JSON.stringify(p)}) differs for:\n${text}`);
  }
  return true;
}

test('the fast reader agrees with the library on the plan fixture and a generated monorepo spec', () => {
  assert.equal(assertAgrees(readFileSync('test/fixtures/plan/monorepo/stowage.yaml', 'utf8')), false, 'flow maps go to the library');
  const lines = ['version: 1', 'vars:', '  REGISTRY:', '    default: registry.example:5000', '  TAG:', '    default: "1"', 'templates:', '  service:', '    push: true', 'images:'];
  for (let i = 0; i < 40; i++) {
    lines.push(`  svc-${i}:`, '    extends: [service]', `    context: services/svc-${i}`, '    args:', `      BASE: \${{ vars.REGISTRY }}/bases/base-${i % 4}:\${{ vars.TAG }}`, `      NAME: svc-${i}`, '    destinations:', `      - \${{ vars.REGISTRY }}/team/svc-${i}:\${{ vars.TAG }}`);
  }
  lines.push('groups:', '  services: ["svc-*"]');
  assert.equal(assertAgrees(`${lines.join('\n')}\n`), true, 'a plain generated spec must take the fast path');
});

test('the fast reader agrees with the library on hand-picked edge cases', () => {
  const accepted = [
    'a: 1\n',
    'a: 1',
    'a:\n',
    'a:',
    'a:\nb: 2\n',
    '# lead\n\na: x # c\n# mid\n\nb:\n  c: y   \n  # inner\n  d: "q"  # c\n\n# tail\n',
    'a:\n- x\n- y\nb: z\n',
    'a:\n  - x\n  -   \'it\'\'s\'   # c\n\n  - "y"\nb: []\nc: [ ]\nd: {}\n',
    'a: [x, "y" , \'z\', 1, true, null]\n',
    'k: ~\nl: Null\nm: TRUE\nn: False\no: -12\np: +3\nq: 007\nr: -x\ns: ./ctx\nt: a#b\nu: x:y\nv: "#"\n',
    '"quoted key": 1\n\'single\': 2\nplain key with spaces: 3\n1: one\ntrue: yes\nnull: n\n',
    '__proto__: {}\nconstructor: x\n',
    'a:\n  b:\n    c:\n      d: [e]\n  f: g\n',
    'a: ""\nb: \'\'\nc: "  spaced  "\n',
    'a: é ü 漢字\n"ключ": значение\n',
    '  a: 1\n  b: 2\n',
    'a: # comment after a key\n  b: 1\n',
    'a: # comment after a key\n- 1\n',
    'a: [x]   # c\nb: z\n',
  ];
  for (const text of accepted) assert.equal(assertAgrees(text), true, `expected the fast path for:\n${text}`);
  const declined = [
    '', '# only a comment\n', '---\na: 1\n', 'a: &x 1\nb: *x\n', 'a: !!str 1\n', 'a: |\n  text\n', 'a: >\n  text\n',
    'a: multi\n  line\n', 'a: "multi\n  line"\n', 'a: "esc\\n"\n', 'a: {b: 1}\n', 'a: [x, [y]]\n', 'a: [x,\n  y]\n',
    'a:\tb\n', 'a: 1\r\nb: 2\r\n', 'a: 1\na: 2\n', 'a: b: c\n', '- a\n- b: c\n', 'a:\n  - b: c\n', '? a\n: b\n', 'a: 0x1F\n',
    'a: 1.5\n', 'a: .inf\n', 'a: 1e3\n', 'a: [x, ]\n', 'a: "x" y\n', 'a:  \n', 'a:   # c\n', 'a:\n  b: 1\n c: 2\n', '\uFEFFa: 1\n',
    'a: `x`\n', 'a: @x\n', 'a: %x\n', 'a: [b: c]\n', 'a: [b#c]\n',
    // An indented comment after a collection's last entry: the library's range rules, declined.
    'a: x\n  # indented comment after the last entry\nb: y\n', 'a: b\n  # c\n', 'a:\n  b: c\n    # c\nd: 1\n',
    'images:\n  app:\n    destinations:\n      - a\n    # trailing comment in the list\n  other: {}\n',
    'a: 1\n--- x: 1\n', 'a: 1\n---\nb: 2\n', 'a: 1\n...\n', 'a: 1\n--- # c\n',
  ];
  for (const text of declined) assert.equal(assertAgrees(text), false, `expected the library for:\n${JSON.stringify(text)}`);
});

test('the fast reader agrees with the library on generated block YAML (declining is fine, differing is not)', () => {
  let seed = 42;
  const rand = (n: number) => {
    // 32-bit LCG kept exact with Math.imul (a plain multiply loses the low bits past 2^53), high bits used.
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
  const scalars = ['x', 'registry.example:5000/a/b:1', '"q"', "'s'", "'it''s'", '1', '-3', '0', 'true', 'null', '~', '', '-x', '.x', 'a b', 'a#b', 'x # c', '"#"', '[a, b]', '[]', '{}', '["a", 1]', '1.5', 'a: b', '"a" # c', '${{ vars.X }}/y', 'é'];
  const keys = ['a', 'b', 'key', '"k q"', "'s'", '1', 'true', 'x y', '__proto__', 'a-b', 'a.b'];
  const pad = () => pick(['', '', '', ' ', '  ']);
  const noise = (ind: string): string => pick(['', '', '', '\n', `${ind}# c\n`, `# c\n`, `${ind}  # deep\n`, '\n\n']);
  const block = (ind: string, depth: number): string => {
    let out = '';
    const n = 1 + rand(4);
    const asList = depth > 0 && rand(4) === 0;
    const used = new Set<string>();
    for (let i = 0; i < n; i++) {
      out += noise(ind);
      if (asList) {
        out += `${ind}-${pick([' ', '  '])}${pick(scalars)}${pad()}\n`;
        continue;
      }
      const key = pick(keys);
      if (used.has(key) && rand(3) > 0) continue;
      used.add(key);
      const nested = depth < 3 && rand(3) === 0;
      if (nested) {
        const compactList = rand(4) === 0;
        out += `${ind}${key}:${pick(['', '', ' # after key'])}\n`;
        out += compactList ? `${ind}- ${pick(scalars)}\n${ind}- ${pick(scalars)}\n` : block(`${ind}${pick(['  ', '    ', ' '])}`, depth + 1);
      } else {
        out += `${ind}${key}:${pick([' ', ' ', '  '])}${pick(scalars)}${pad()}${pick(['', '', ' # c'])}\n`;
      }
    }
    return out;
  };
  let accepted = 0;
  const total = 400;
  for (let i = 0; i < total; i++) {
    let text = block('', 0);
    if (rand(5) === 0) text = text.replace(/\n$/, '');
    if (assertAgrees(text)) accepted++;
  }
  // The comparison means something only if the fast path is actually taken often.
  assert.ok(accepted > total / 5, `only ${accepted} of ${total} generated documents took the fast path`);
});
