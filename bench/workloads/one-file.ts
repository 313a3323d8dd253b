/**
 * Workload 3: one-file change in a 100,000-file rootfs. The base (busybox + 100,000 small files) is
 * built once and pushed to the local registry; each tool pulls and unpacks it once (not measured);
 * then each measured run is `FROM big` + `RUN echo $N > /data/d0/f0` with a new N, so no step cache
 * can answer it. `find <tree> -printf '%s %T@\n'` over the same unpacked tree is the yardstick: the
 * least any stat-based snapshot of the whole tree can cost.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freshDir, interleave, reasonOf, removeTree, unavailable, type BenchContext, type Workload, type WorkloadRow } from '../lib/context.js';
import { runChecked, runPlain } from '../lib/process.js';
import { withRegistry } from '../lib/registry.js';
import { BUILDAH, SKOPEO, createBuildahStore, seedRegistry, unpackLayout } from '../lib/tools.js';
import { writeScripts } from './scripts.js';

export const ONE_FILE_DOCKERFILE = 'ARG BASE\nFROM ${BASE}\nARG N=0\nRUN echo "$N" > /data/d0/f0\n';

export const oneFileChange: Workload = {
  id: 'one-file',
  title: 'one-file change in a large rootfs',
  async run(ctx: BenchContext): Promise<WorkloadRow[]> {
    const files = ctx.quick ? 10_000 : 100_000;
    const title = `one-file change in a ${files.toLocaleString('en')}-file rootfs`;
    const params = { files };
    const root = await freshDir(ctx, 'one-file');
    try {
      return await withRegistry(async (reg) => {
        const env = { env: ctx.env, signal: ctx.signal };
        await seedRegistry(ctx, ctx.base, `${reg.host}/base:1`);
        const bigRef = `${reg.host}/bench/big:1`;

        // The big base: built by stowage, or by Buildah when stowage cannot run RUN yet.
        const baseCtx = join(root, 'base-context');
        await mkdir(baseCtx);
        await writeScripts(baseCtx);
        await writeFile(join(baseCtx, 'Dockerfile'), `ARG BASE\nFROM \${BASE}\nCOPY gen.sh /bench/\nRUN sh /bench/gen.sh ${files} ${files * 100} /data\n`);
        const notes: string[] = [];
        try {
          await runPlain(ctx.stowage, ['executor', '--dockerfile', join(baseCtx, 'Dockerfile'), '--context', baseCtx, '--build-arg', `BASE=${reg.host}/base:1`, '--destination', bigRef, '--cache-dir', join(root, 'setup-cache'), '--insecure-registry', reg.host], env);
          notes.push('base built by stowage');
        } catch (e) {
          ctx.log(`  one-file: stowage could not build the base (${reasonOf(e)}); building it with Buildah`);
          const store = await createBuildahStore(ctx);
          try {
            await runPlain(BUILDAH, [...store.globalArgs, 'bud', ...store.budArgs, '--build-arg', `BASE=${reg.host}/base:1`, '-t', bigRef, '-f', join(baseCtx, 'Dockerfile'), baseCtx], env);
            await runPlain(BUILDAH, [...store.globalArgs, 'push', '--tls-verify=false', '--quiet', bigRef], env);
            notes.push('base built by Buildah');
          } finally {
            await store.dispose();
          }
        } finally {
          await removeTree(join(root, 'setup-cache'));
        }

        // The yardstick's tree: the same image, unpacked by umoci.
        const layout = { dir: join(root, 'big-layout'), tag: 'big' };
        await runPlain(SKOPEO, ['copy', '--quiet', '--src-tls-verify=false', `docker://${bigRef}`, `oci:${layout.dir}:${layout.tag}`], env);
        const tree = join(root, 'big-rootfs');
        await unpackLayout(ctx, layout, tree);
        await removeTree(layout.dir);

        const contextDir = join(root, 'context');
        await mkdir(contextDir);
        await writeFile(join(contextDir, 'Dockerfile'), ONE_FILE_DOCKERFILE);
        const dockerfile = join(contextDir, 'Dockerfile');

        // Prime each tool once: base pulled and unpacked, as on a developer's machine after the first build.
        const stowageCache = join(root, 'stowage-cache');
        const stowageArgs = (n: string, out: string) => ['executor', '--dockerfile', dockerfile, '--context', contextDir, '--build-arg', `BASE=${bigRef}`, '--build-arg', `N=${n}`, '--destination', `oci:${out}:one`, '--cache-dir', stowageCache, '--insecure-registry', reg.host];
        let stowagePrimed: string | undefined;
        try {
          await runPlain(ctx.stowage, stowageArgs('prime', join(root, 'prime-out')), env);
        } catch (e) {
          stowagePrimed = reasonOf(e);
        }
        await removeTree(join(root, 'prime-out'));
        const store = await createBuildahStore(ctx);
        try {
          await runPlain(BUILDAH, [...store.globalArgs, 'pull', '--tls-verify=false', '--quiet', bigRef], env);
          const sides = await interleave(ctx, 'one-file', [
            {
              tool: 'stowage executor',
              measure: async (i) => {
                if (stowagePrimed !== undefined) throw new Error(stowagePrimed);
                const out = join(root, `out-${i}`);
                try {
                  const r = await runChecked(ctx.stowage, stowageArgs(`run-${i}`, out), env);
                  return { wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb };
                } finally {
                  await removeTree(out);
                }
              },
            },
            {
              tool: 'buildah bud',
              measure: async (i) => {
                const tag = `localhost/bench/one:${i}`;
                const r = await runChecked(BUILDAH, [...store.globalArgs, 'bud', ...store.budArgs, '--build-arg', `BASE=${bigRef}`, '--build-arg', `N=run-${i}`, '-t', tag, '-f', dockerfile, contextDir], env);
                // vfs keeps a full copy per layer: drop the result so storage does not grow run by run.
                await runPlain(BUILDAH, [...store.globalArgs, 'rmi', tag], env).catch(() => undefined);
                return { wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb };
              },
            },
            {
              tool: "find -printf '%s %T@'",
              measure: async () => {
                const r = await runChecked('/usr/bin/find', [tree, '-printf', '%s %T@\\n'], env);
                return { wallMs: r.wallMs, cpuMs: r.cpuMs, maxRssKb: r.maxRssKb };
              },
            },
          ]);
          notes.push('warm base: each tool pulled and unpacked it once before the measured runs; a new build arg per run defeats step caches; stowage writes an OCI layout, Buildah commits to vfs storage (a full copy per container)');
          return [
            {
              id: 'one-file',
              title,
              params,
              stowage: sides.get('stowage executor')!,
              peer: sides.get('buildah bud')!,
              yardstick: sides.get("find -printf '%s %T@'")!,
              notes,
            },
          ];
        } finally {
          await store.dispose();
        }
      });
    } catch (e) {
      if (ctx.signal.aborted) throw e;
      const reason = `setup failed: ${reasonOf(e)}`;
      return [{ id: 'one-file', title, params, stowage: unavailable('stowage executor', reason), peer: unavailable('buildah bud', reason), notes: [] }];
    } finally {
      await removeTree(root);
    }
  },
};
