/**
 * The peers and helpers as the workloads call them: Buildah with a private vfs storage and chroot
 * isolation, skopeo, umoci, and a check for which stowage commands exist in this build.
 */
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { freshDir, removeTree, type BenchContext } from './context.js';
import { runPlain } from './process.js';

export const BUILDAH = '/usr/bin/buildah';
export const SKOPEO = '/usr/bin/skopeo';
export const UMOCI = '/usr/bin/umoci';
export const BWRAP = '/usr/bin/bwrap';

/** A Buildah with its own storage root, so runs never share or leak state. */
export interface BuildahStore {
  /** Global flags that select the private storage. */
  globalArgs: string[];
  /** `bud` flags every workload uses. */
  budArgs: string[];
  dispose(): Promise<void>;
}

export async function createBuildahStore(ctx: BenchContext): Promise<BuildahStore> {
  const dir = await freshDir(ctx, 'buildah');
  const globalArgs = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs'];
  return {
    globalArgs,
    budArgs: ['--isolation', 'chroot', '--tls-verify=false', '--quiet'],
    dispose: async () => {
      // Containers left by a failed bud hold nothing mounted with vfs, but remove them properly first.
      await runPlain(BUILDAH, [...globalArgs, 'rm', '--all'], { env: ctx.env, signal: ctx.signal }).catch(() => undefined);
      await removeTree(dir);
    },
  };
}

/** Copies an OCI layout's image into a registry with skopeo (a neutral tool for setup). */
export async function seedRegistry(ctx: BenchContext, layout: { dir: string; tag: string }, ref: string): Promise<void> {
  await runPlain(SKOPEO, ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout.dir}:${layout.tag}`, `docker://${ref}`], { env: ctx.env, signal: ctx.signal });
}

/** Unpacks an OCI layout's image into `rootfs` (umoci, an independent implementation). */
export async function unpackLayout(ctx: BenchContext, layout: { dir: string; tag: string }, rootfs: string): Promise<void> {
  await mkdir(rootfs, { recursive: true });
  await runPlain(UMOCI, ['raw', 'unpack', '--image', `${layout.dir}:${layout.tag}`, rootfs], { env: ctx.env, signal: ctx.signal });
}

/** Whether `stowage <command>` exists in this build; the reason when it does not. */
export async function stowageHasCommand(ctx: BenchContext, command: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    await runPlain(ctx.stowage, [command, '--help'], { env: ctx.env, signal: ctx.signal });
    return { ok: true };
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    return { ok: false, reason: /unknown command/.test(text) ? `stowage ${command} is not implemented yet` : text.replace(/\s+/g, ' ').slice(0, 300) };
  }
}
