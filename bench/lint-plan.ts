/**
 * Workload 5 and `npm run bench:lint`: `stowage lint` and `stowage plan` of a generated monorepo spec
 * with 500 images and 500 Dockerfiles (10 bases, 490 services built FROM a base's destination, with
 * multi-stage Dockerfiles, templates, args and groups). Both commands need no network, so this is
 * the cost a pull request pays on every push. Target: under 2 s for the pair.
 *
 *   npm run bench:lint [-- --images N] [-- --runs N]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freshDir, interleave, removeTree, type BenchContext, type Workload, type WorkloadRow } from './lib/context.js';
import { combine, runChecked } from './lib/process.js';
import { formatMs, median } from './lib/stats.js';

const BASES = 10;

function baseDockerfile(i: number): string {
  return `# base ${i}\nFROM scratch\nCOPY rootfs/ /\nENV BASE_ID=${i} PATH=/usr/local/bin:/usr/bin:/bin\nLABEL org.example.base="${i}"\n`;
}

function serviceDockerfile(i: number): string {
  return [
    `# service ${i}`,
    `ARG BASE=registry.example:5000/bases/base-${i % BASES}:1`,
    'FROM ${BASE} AS build',
    'ARG NAME',
    'WORKDIR /src',
    'COPY src/ ./',
    'RUN ./configure --prefix=/opt/${NAME} && make -j2 && make install',
    '',
    'FROM ${BASE}',
    'ARG NAME',
    'ARG PORT=8080',
    'ENV SERVICE=${NAME} PORT=${PORT}',
    'COPY --from=build /opt/${NAME} /opt/${NAME}',
    'USER 1000:1000',
    'EXPOSE ${PORT}',
    'HEALTHCHECK --interval=30s CMD ["/opt/health"]',
    'ENTRYPOINT ["/opt/run"]',
    `CMD ["--service", "svc-${i}"]`,
    '',
  ].join('\n');
}

/** Writes the spec and its contexts under `dir`; returns the spec's path. */
export function generateLintPlanSpec(dir: string, images = 500): string {
  const lines: string[] = [
    'version: 1',
    'vars:',
    '  REGISTRY:',
    '    default: registry.example:5000',
    '  TAG:',
    '    default: "1"',
    'templates:',
    '  service:',
    '    push: true',
    '    labels:',
    '      org.opencontainers.image.source: https://example.invalid/monorepo',
    'images:',
  ];
  const bases = Math.min(BASES, images);
  for (let b = 0; b < bases; b++) {
    const ctx = join(dir, 'bases', `base-${b}`);
    mkdirSync(join(ctx, 'rootfs', 'etc'), { recursive: true });
    writeFileSync(join(ctx, 'rootfs', 'etc', 'base-id'), `${b}\n`);
    writeFileSync(join(ctx, 'Dockerfile'), baseDockerfile(b));
    lines.push(`  base-${b}:`, `    context: bases/base-${b}`, '    destinations:', `      - \${{ vars.REGISTRY }}/bases/base-${b}:\${{ vars.TAG }}`);
  }
  for (let i = bases; i < images; i++) {
    const ctx = join(dir, 'services', `svc-${i}`);
    mkdirSync(join(ctx, 'src'), { recursive: true });
    writeFileSync(join(ctx, 'src', 'configure'), '#!/bin/sh\n');
    writeFileSync(join(ctx, 'Dockerfile'), serviceDockerfile(i));
    const b = i % bases;
    lines.push(
      `  svc-${i}:`,
      '    extends: [service]',
      `    context: services/svc-${i}`,
      '    args:',
      `      BASE: \${{ vars.REGISTRY }}/bases/base-${b}:\${{ vars.TAG }}`,
      `      NAME: svc-${i}`,
      '    destinations:',
      `      - \${{ vars.REGISTRY }}/team-${i % 7}/svc-${i}:\${{ vars.TAG }}`,
    );
  }
  lines.push('groups:', '  bases: ["base-*"]', '  services: ["svc-*"]');
  const specPath = join(dir, 'stowage.yaml');
  writeFileSync(specPath, lines.join('\n') + '\n');
  return specPath;
}

export const lintPlanWorkload: Workload = {
  id: 'lint-plan',
  title: 'lint + plan, 500 images',
  async run(ctx: BenchContext): Promise<WorkloadRow[]> {
    const images = 500;
    const dir = await freshDir(ctx, 'lint-plan');
    try {
      const spec = generateLintPlanSpec(dir, images);
      const parts = { lint: [] as number[], plan: [] as number[] };
      const sides = await interleave(ctx, 'lint+plan', [
        {
          tool: 'stowage',
          measure: async () => {
            const lint = await runChecked(ctx.stowage, ['lint', '-f', spec], { cwd: dir, env: ctx.env, signal: ctx.signal });
            const plan = await runChecked(ctx.stowage, ['plan', '-f', spec, '--format', 'json'], { cwd: dir, env: ctx.env, signal: ctx.signal });
            parts.lint.push(lint.wallMs);
            parts.plan.push(plan.wallMs);
            return combine([lint, plan]);
          },
        },
      ]);
      const notes = parts.lint.length > 0 ? [`lint ${formatMs(median(parts.lint))} + plan ${formatMs(median(parts.plan))} (two processes, Node startup included); target under 2 s`] : [];
      return [{ id: 'lint-plan', title: `lint + plan, ${images} images`, params: { images, dockerfiles: images }, stowage: sides.get('stowage')!, notes }];
    } finally {
      await removeTree(dir);
    }
  },
};

/** `npm run bench:lint`: the same measurement on its own, printing seconds. */
async function standalone(argv: string[]): Promise<void> {
  const flag = (name: string, fallback: number): number => {
    const i = argv.indexOf(name);
    const n = i < 0 ? fallback : Number(argv[i + 1]);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} takes a positive integer`);
    return n;
  };
  const images = flag('--images', 500);
  const runs = flag('--runs', 3);
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const root = mkdtempSync(join(tmpdir().startsWith('/dev/shm') ? tmpdir() : '/dev/shm', 'stowage-bench-lint-'));
  const controller = new AbortController();
  try {
    const dir = join(root, 'spec');
    mkdirSync(dir);
    const spec = generateLintPlanSpec(dir, images);
    const stowage = join(repo, 'bin', 'stowage');
    const lint: number[] = [];
    const plan: number[] = [];
    for (let i = 0; i < runs; i++) {
      lint.push((await runChecked(stowage, ['lint', '-f', spec], { cwd: dir, signal: controller.signal })).wallMs);
      plan.push((await runChecked(stowage, ['plan', '-f', spec, '--format', 'json'], { cwd: dir, signal: controller.signal })).wallMs);
    }
    const total = median(lint) + median(plan);
    process.stdout.write(
      `lint + plan of ${images} images / ${images} Dockerfiles (median of ${runs}): ` +
        `lint ${(median(lint) / 1000).toFixed(2)} s, plan ${(median(plan) / 1000).toFixed(2)} s, total ${(total / 1000).toFixed(2)} s (target < 2 s)\n`,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  standalone(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`bench:lint: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
