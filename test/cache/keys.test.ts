/**
 * Key sensitivity, both directions: every input DESIGN.md names changes a step's key; what must not
 * matter (comments, line moves, keyword casing, another image's build args, mtimes, instruction
 * names) does not. Keys are computed with the same walk `stowage plan` uses (planStageKeys), over
 * a real build context on disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDockerfile } from '../../src/dockerfile/parse.js';
import { openDirContext } from '../../src/engine/context/context.js';
import { emptyImageConfig } from '../../src/image/mutate.js';
import { planStageKeys } from '../../src/cache/plan-keys.js';
import { CACHE_KEY_VERSION, keyMaterial, stepKey } from '../../src/cache/keys.js';
import { initialStageState } from '../../src/dockerfile/stage-env.js';
import { isExpired, parseEntry, parseTtl } from '../../src/cache/entry.js';

const PLATFORM = { os: 'linux', architecture: 'amd64' };

interface KeyCase {
  dockerfile: string;
  files?: Record<string, string>;
  buildArgs?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string };
  sourceDateEpoch?: number;
  /** Run after writing the files. */
  touch?: (dir: string) => void;
}

const BASE: KeyCase = {
  dockerfile: `FROM scratch AS build
ARG VERSION=1
ENV MODE=prod
COPY app/ /app/
RUN --mount=type=secret,id=token,target=/run/token make
FROM scratch
COPY --from=build /app /out
`,
  files: { 'app/main.c': 'int main(){}\n', 'app/README': 'readme\n', 'other.txt': 'not copied\n', '.dockerignore': 'app/README\n' },
};

/** The keys of every step of every stage (stage chains planned in order). */
async function keysOf(c: KeyCase): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'stowage-keys-'));
  try {
    for (const [name, content] of Object.entries(c.files ?? {})) {
      mkdirSync(join(dir, name, '..'), { recursive: true });
      writeFileSync(join(dir, name), content);
    }
    c.touch?.(dir);
    writeFileSync(join(dir, 'Dockerfile'), c.dockerfile);
    const parsed = parseDockerfile(c.dockerfile, { file: 'Dockerfile' });
    assert.ok(parsed.dockerfile, JSON.stringify(parsed.diagnostics));
    const df = parsed.dockerfile;
    const context = await openDirContext({ dir, dockerfilePath: join(dir, 'Dockerfile') });
    const platform = c.platform ?? PLATFORM;
    const stages = new Map<number, { name?: string; cacheKey?: string }>();
    const keys: string[] = [];
    try {
      for (const stage of df.stages) {
        const fromStage = [...stages.entries()].find(([, s]) => s.name === stage.from.image.toLowerCase());
        const r = await planStageKeys({
          dockerfile: df,
          stageIndex: stage.index,
          buildArgs: c.buildArgs ?? {},
          platform,
          base: fromStage?.[1].cacheKey
            ? { identity: { kind: 'stage', key: fromStage[1].cacheKey }, config: emptyImageConfig(platform).config! }
            : { identity: { kind: 'scratch' }, config: emptyImageConfig(platform).config! },
          stages,
          context,
          ...(c.sourceDateEpoch !== undefined ? { sourceDateEpoch: c.sourceDateEpoch } : {}),
          peek: async () => false,
          signal: new AbortController().signal,
        });
        for (const s of r.steps) {
          assert.ok(s.key, `line ${s.line} has a key`);
          keys.push(s.key);
        }
        stages.set(stage.index, { ...(stage.name ? { name: stage.name } : {}), ...(r.finalKey ? { cacheKey: r.finalKey } : {}) });
      }
    } finally {
      await context.close();
    }
    return keys;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const variant = (patch: Partial<KeyCase>): KeyCase => ({ ...BASE, ...patch });
const df = (from: string, to: string) => BASE.dockerfile.replace(from, to);

test('each input changes the key of the step that sees it (and of every step after it)', async () => {
  const base = await keysOf(BASE);
  assert.equal(base.length, 5);
  assert.equal(new Set(base).size, 5, 'every step has its own key');
  const changes: [string, KeyCase, number][] = [
    // [what, variant, index of the first step whose key must change]
    ['ARG default', variant({ dockerfile: df('VERSION=1', 'VERSION=2') }), 0],
    ['build arg value of a declared ARG', variant({ buildArgs: { VERSION: '7' } }), 0],
    ['ENV value', variant({ dockerfile: df('MODE=prod', 'MODE=dev') }), 1],
    ['copied file content', variant({ files: { ...BASE.files, 'app/main.c': 'int main(){return 1;}\n' } }), 2],
    ['copied file mode', variant({ touch: (d) => chmodSync(join(d, 'app/main.c'), 0o755) }), 2],
    ['a file added under a copied dir', variant({ files: { ...BASE.files, 'app/new.h': '' } }), 2],
    ['.dockerignore letting a file in', variant({ files: { ...BASE.files, '.dockerignore': '' } }), 2],
    ['COPY destination', variant({ dockerfile: df('COPY app/ /app/', 'COPY app/ /srv/') }), 2],
    ['COPY --chown', variant({ dockerfile: df('COPY app/ /app/', 'COPY --chown=1:1 app/ /app/') }), 2],
    ['COPY --chmod', variant({ dockerfile: df('COPY app/ /app/', 'COPY --chmod=600 app/ /app/') }), 2],
    ['RUN command', variant({ dockerfile: df('make\n', 'make all\n') }), 3],
    ['RUN secret mount target (not its value)', variant({ dockerfile: df('target=/run/token', 'target=/run/tok') }), 3],
    ['RUN network', variant({ dockerfile: df('RUN --mount', 'RUN --network=none --mount') }), 3],
    ['COPY --from path', variant({ dockerfile: df('COPY --from=build /app /out', 'COPY --from=build /app/ /out2') }), 4],
    ['platform', variant({ platform: { os: 'linux', architecture: 'arm64' } }), 0],
    ['SOURCE_DATE_EPOCH', variant({ sourceDateEpoch: 0 }), 0],
  ];
  for (const [what, c, first] of changes) {
    const keys = await keysOf(c);
    for (let i = 0; i < base.length; i++) {
      if (i < first) assert.equal(keys[i], base[i], `${what}: step ${i} before the change keeps its key`);
      else assert.notEqual(keys[i], base[i], `${what}: step ${i} gets a new key`);
    }
  }
});

test('irrelevant changes keep every key', async () => {
  const base = await keysOf(BASE);
  const same: [string, KeyCase][] = [
    ['comments and blank lines (lines move)', variant({ dockerfile: `# syntax comment\n\n${BASE.dockerfile.replace('ENV MODE=prod', '# why\nENV MODE=prod\n')}` })],
    ['keyword casing', variant({ dockerfile: BASE.dockerfile.replace('COPY app/', 'copy app/').replace('RUN --mount', 'run --mount') })],
    ['an undeclared build arg (another image’s args)', variant({ buildArgs: { OTHER: 'x', NAME: 'api' } })],
    ['mtimes of context files', variant({ touch: (d) => utimesSync(join(d, 'app/main.c'), new Date('2000-01-01'), new Date('2000-01-01')) })],
    ['an ignored file', variant({ files: { ...BASE.files, 'app/README': 'changed, but ignored\n' } })],
    ['a context file nothing reads', variant({ files: { ...BASE.files, 'other.txt': 'changed\n' } })],
    ['the stage name', variant({ dockerfile: BASE.dockerfile.replace('AS build', 'AS builder').replace('--from=build', '--from=builder') })],
  ];
  for (const [what, c] of same) assert.deepEqual(await keysOf(c), base, what);
});

test('a stage with no steps still has its base in its key (Kaniko drops it)', async () => {
  const twoStages = (from: string) => ({ dockerfile: `FROM scratch AS a\nENV X=${from}\nFROM a AS empty\nFROM scratch\nCOPY --from=empty / /\n` });
  const [k1] = (await keysOf(twoStages('1'))).slice(-1);
  const [k2] = (await keysOf(twoStages('2'))).slice(-1);
  assert.notEqual(k1, k2, 'COPY --from=<empty stage> sees the stage’s base');
});

test('keys are versioned and the material holds no source positions', () => {
  const parsed = parseDockerfile('FROM scratch\nRUN   echo hi\n', { file: 'Dockerfile' }).dockerfile!;
  const instr = parsed.stages[0]!.instructions[0]!;
  const state = initialStageState({ baseConfig: emptyImageConfig(PLATFORM), buildArgs: {}, platform: PLATFORM, metaArgs: [] });
  const req = { parent: { kind: 'scratch' as const }, instruction: instr, state, platform: PLATFORM, runtime: { network: 'default', hostname: 'h' }, inputs: {} };
  const material = JSON.parse(keyMaterial(req)) as Record<string, unknown>;
  assert.equal(material['v'], CACHE_KEY_VERSION);
  assert.doesNotMatch(keyMaterial(req), /"range"|"original"|"keyword"|"line"/);
  assert.match(stepKey(req), /^sha256:[0-9a-f]{64}$/);
  assert.notEqual(stepKey(req), stepKey({ ...req, runtime: { network: 'default', hostname: 'other' } }), 'the sandbox hostname is seen by RUN');
});

test('entries: corrupt or foreign ones are rejected with a reason; TTL uses the time written', () => {
  const key = `sha256:${'a'.repeat(64)}`;
  const good = { version: CACHE_KEY_VERSION, key, created: '2026-01-01T00:00:00Z', writtenAt: '2026-01-01T00:00:00Z' };
  assert.equal(typeof parseEntry(JSON.stringify(good), key), 'object');
  assert.match(parseEntry('{"version":1,', key) as string, /not JSON/);
  assert.match(parseEntry(JSON.stringify(good), `sha256:${'b'.repeat(64)}`) as string, /another key/);
  assert.match(parseEntry(JSON.stringify({ ...good, version: 99 }), key) as string, /version/);
  assert.match(parseEntry(JSON.stringify({ ...good, layer: { descriptor: { digest: 'nope' } } }), key) as string, /layer/);
  assert.equal(parseTtl('168h'), 168 * 3600_000);
  assert.equal(parseTtl('1d12h'), 36 * 3600_000);
  assert.equal(parseTtl('7x'), undefined);
  const entry = parseEntry(JSON.stringify(good), key) as Exclude<ReturnType<typeof parseEntry>, string>;
  assert.equal(isExpired(entry, 3600_000, new Date('2026-01-01T00:59:00Z')), false);
  assert.equal(isExpired(entry, 3600_000, new Date('2026-01-01T01:01:00Z')), true);
  assert.equal(isExpired(entry, undefined, new Date('2099-01-01T00:00:00Z')), false);
});
