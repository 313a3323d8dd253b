/**
 * The step cache in the real engine (bwrap sandbox, real snapshotter, real blob store): rebuilds
 * restore steps without running them and give the same image; a context edit re-runs exactly the
 * steps that read it and those after; a hit's layer is really in the rootfs the next RUN sees;
 * corrupt entries and --no-cache run the steps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheFixture, cachedBuild } from './helpers.js';

const DOCKERFILE = `FROM busybox
# a comment
ENV GREETING=hello
COPY a.txt /app/a.txt
RUN cat /app/a.txt > /app/a.copy
COPY b.txt /app/b.txt
RUN cat /app/a.copy /app/b.txt > /app/both && echo "$GREETING" >> /app/both
LABEL purpose=test
CMD ["cat", "/app/both"]
`;

test('a rebuild restores every step without running it, gives the same digest, and a one-file edit re-runs exactly its steps', async () => {
  const fx = cacheFixture({ Dockerfile: DOCKERFILE, 'a.txt': 'A\n', 'b.txt': 'B\n' });
  try {
    const cold = await cachedBuild(fx);
    assert.deepEqual(cold.hits, []);
    assert.deepEqual(cold.ran, [3, 4, 5, 6, 7, 8, 9]);
    assert.deepEqual(cold.warnings, []);

    // mtimes do not matter
    utimesSync(join(fx.context, 'a.txt'), new Date('2001-01-01'), new Date('2001-01-01'));
    const warm = await cachedBuild(fx);
    assert.deepEqual(warm.ran, [], 'nothing runs on an unchanged rebuild');
    assert.deepEqual(warm.hits, [3, 4, 5, 6, 7, 8, 9]);
    assert.equal(warm.image.digest, cold.image.digest, 'identical image');
    assert.equal(warm.events.filter((e) => e.type === 'cache-hit').length, 7);

    // b.txt is read by line 6: lines 6 and 7 run (7 depends on 6), the config steps after re-key and restore nothing.
    fx.write({ 'b.txt': 'B2\n' });
    const edited = await cachedBuild(fx);
    assert.deepEqual(edited.hits, [3, 4, 5]);
    assert.deepEqual(edited.ran, [6, 7, 8, 9]);
    assert.notEqual(edited.image.digest, cold.image.digest);
    // The RUN on line 7 saw the restored layers of lines 4 and 5 (they never ran in this build).
    const both = await readLayerFile(fx, edited, 'app/both');
    assert.equal(both, 'A\nB2\nhello\n');

    // Back to the first content: the first build's entries hit again.
    fx.write({ 'b.txt': 'B\n' });
    const back = await cachedBuild(fx);
    assert.deepEqual(back.ran, []);
    assert.equal(back.image.digest, cold.image.digest);
  } finally {
    fx.cleanup();
  }
});

test('a corrupt local entry is a warning and the step runs again; --no-cache runs everything', async () => {
  const fx = cacheFixture({ Dockerfile: 'FROM busybox\nCOPY a.txt /a.txt\nRUN wc -c /a.txt > /n\n', 'a.txt': 'xyz' });
  try {
    const cold = await cachedBuild(fx);
    assert.deepEqual(cold.ran, [2, 3]);
    const index = join(fx.cacheDir, 'step-cache');
    const entries = readdirSync(index).filter((f) => f.endsWith('.json'));
    assert.equal(entries.length, 2);
    // Corrupt the RUN's entry (found by its history text).
    const runEntry = entries.find((f) => readFileSync(join(index, f), 'utf8').includes('wc -c'))!;
    writeFileSync(join(index, runEntry), '{"version":1,"key":"sha256:');
    const again = await cachedBuild(fx);
    assert.deepEqual(again.hits, [2]);
    assert.deepEqual(again.ran, [3]);
    assert.equal(again.warnings.length, 1);
    assert.match(again.warnings[0]!, /corrupt entry/);
    assert.equal((await readLayerFile(fx, again, 'n')).trim(), '3 /a.txt', 'the RUN really ran on the restored COPY layer');
    // The entry was rewritten: the next build hits it.
    assert.deepEqual((await cachedBuild(fx)).ran, []);

    const nocache = await cachedBuild(fx, { noCache: true });
    assert.deepEqual(nocache.hits, []);
    assert.deepEqual(nocache.ran, [2, 3]);
  } finally {
    fx.cleanup();
  }
});

test('a stage whose steps all hit is still readable by COPY --from, and two identical stages build once', async () => {
  const dockerfile = `FROM busybox AS one
RUN echo built > /marker && sleep 0.3
FROM busybox AS two
RUN echo built > /marker && sleep 0.3
FROM busybox
COPY --from=one /marker /one
COPY --from=two /marker /two
RUN cat /one /two > /both
`;
  const fx = cacheFixture({ Dockerfile: dockerfile });
  try {
    const cold = await cachedBuild(fx, { stageConcurrency: 2 });
    // Stages one and two have the same key: one of them ran the RUN, the other waited and restored it.
    const runs = cold.ran.filter((l) => l === 2 || l === 4).length;
    const restored = cold.events.filter((e) => e.type === 'cache-hit' && e.source === 'this-run').length;
    assert.equal(runs, 1, `the shared step ran once (ran: ${cold.ran.join(',')})`);
    assert.equal(restored, 1);
    assert.equal(await readLayerFile(fx, cold, 'both'), 'built\nbuilt\n');

    // Change only the last RUN: stages one and two hit and their rootfs are prepared for COPY --from on demand.
    fx.write({ Dockerfile: dockerfile.replace('cat /one /two > /both', 'cat /two /one > /both2') });
    const next = await cachedBuild(fx);
    assert.deepEqual(next.ran, [8]);
    assert.equal(await readLayerFile(fx, next, 'both2'), 'built\nbuilt\n');
  } finally {
    fx.cleanup();
  }
});

/** Reads one file from the image's top layer that has it (gunzip + tar through busybox-free Node). */
async function readLayerFile(fx: { cacheDir: string }, b: { image: import('../../src/image/blob.js').Image }, path: string): Promise<string> {
  const { createGunzip } = await import('node:zlib');
  const tar = await import('tar-stream');
  for (const layer of [...b.image.layers].reverse()) {
    const extract = tar.extract();
    const found = new Promise<string | undefined>((resolve, reject) => {
      let content: string | undefined;
      extract.on('entry', (header, stream, next) => {
        const chunks: Buffer[] = [];
        stream.on("data", (c: unknown) => chunks.push(c as Buffer));
        stream.on('end', () => {
          if (header.name.replace(/^\.?\//, '') === path) content = Buffer.concat(chunks).toString('utf8');
          next();
        });
      });
      extract.on('finish', () => resolve(content));
      extract.on('error', reject);
    });
    (await layer.open()).pipe(createGunzip()).pipe(extract);
    const content = await found;
    if (content !== undefined) return content;
  }
  void fx;
  throw new Error(`${path} is in no layer`);
}
