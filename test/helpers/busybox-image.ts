/**
 * A busybox base image built by stowage itself, for tests that need `FROM` with a shell:
 * `FROM scratch`, `COPY busybox /bin/busybox`, and a prepared skeleton (applet symlinks in /bin,
 * /etc/passwd and /etc/group with `root` and `app` (1000:1000), /tmp 1777, /home/app) copied in —
 * no RUN, so it builds without a sandbox. Written once per test process into an OCI layout in a
 * temp dir that is removed when the process exits.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Image } from '../../src/image/blob.js';
import type { Platform } from '../../src/image/types.js';
import { buildDockerfile, createEnginePorts, writeDestinations, type EngineSetup } from '../../src/engine/build-image.js';
import { hostPlatform } from '../../src/image/platform.js';
import { readImageFromLayout } from '../../src/store/oci-layout.js';
import type { ImageSource } from '../../src/engine/instructions/types.js';

export const BUSYBOX = '/bin/busybox';
export const BUSYBOX_TAG = 'busybox';

export interface BusyboxLayout {
  /** The OCI layout directory. */
  dir: string;
  /** `oci:<dir>:busybox` */
  ref: string;
  tag: string;
  image: Image;
}

export const BUSYBOX_DOCKERFILE = `FROM scratch
COPY busybox /bin/busybox
COPY skel/ /
`;

/** Writes the busybox build context (binary, applet links, passwd/group) into `dir`. */
export function writeBusyboxContext(dir: string): void {
  copyFileSync(BUSYBOX, join(dir, 'busybox'));
  chmodSync(join(dir, 'busybox'), 0o755);
  const skel = join(dir, 'skel');
  for (const d of ['bin', 'etc', 'tmp', 'home/app', 'root']) mkdirSync(join(skel, d), { recursive: true });
  chmodSync(join(skel, 'tmp'), 0o1777);
  chmodSync(join(skel, 'root'), 0o700);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a !== '' && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(skel, 'bin', a));
  writeFileSync(join(skel, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  writeFileSync(join(skel, 'etc', 'group'), 'root:x:0:\napp:x:1000:\nstaff:x:50:app\nnogroup:x:65534:\n');
  writeFileSync(join(dir, 'Dockerfile'), BUSYBOX_DOCKERFILE);
}

let cached: Promise<BusyboxLayout> | undefined;

/** Temp dirs of this process, removed at exit (tests also clean their own). */
export function processTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The busybox image's OCI layout, built once per test process. */
export function busyboxLayout(): Promise<BusyboxLayout> {
  cached ??= (async () => {
    const root = processTempDir('stowage-busybox-');
    const ctx = join(root, 'context');
    mkdirSync(ctx);
    writeBusyboxContext(ctx);
    const cacheDir = join(root, 'cache');
    const signal = new AbortController().signal;
    const setup: EngineSetup = await createEnginePorts({ cacheDir, snapshotter: 'walk', isolation: 'none', signal });
    try {
      const image = await buildDockerfile({
        dockerfilePath: join(ctx, 'Dockerfile'),
        contextDir: ctx,
        buildArgs: {},
        platform: hostPlatform(),
        ports: setup.engine,
        options: { cacheDir, signal, sourceDateEpoch: 0 },
      });
      const dir = join(root, 'layout');
      await writeDestinations(image, [`oci:${dir}:${BUSYBOX_TAG}`], { signal });
      return { dir, ref: `oci:${dir}:${BUSYBOX_TAG}`, tag: BUSYBOX_TAG, image };
    } finally {
      await setup.close();
    }
  })();
  return cached;
}

/** Pushes the busybox image to `ref` (a registry reference), for tests that build FROM a registry. */
export async function pushBusybox(ref: string, cacheDir: string): Promise<void> {
  const bb = await busyboxLayout();
  const setup = await createEnginePorts({ cacheDir, snapshotter: 'walk', isolation: 'none', signal: new AbortController().signal });
  try {
    await setup.push(bb.image, ref, new AbortController().signal);
  } finally {
    await setup.close();
  }
}

/** An ImageSource where `busybox` (and `oci:<dir>:<tag>` refs) resolve to local layouts. */
export function localImages(names: Record<string, { dir: string; tag: string }>): ImageSource {
  return {
    async resolve(ref: string, platform: Platform, signal: AbortSignal): Promise<Image> {
      const known = names[ref];
      if (known) return readImageFromLayout(known.dir, { tag: known.tag, platform, signal });
      if (ref.startsWith('oci:')) {
        const rest = ref.slice(4);
        const i = rest.indexOf(':');
        return readImageFromLayout(i < 0 ? rest : rest.slice(0, i), { ...(i < 0 ? {} : { tag: rest.slice(i + 1) }), platform, signal });
      }
      throw new Error(`test image ${ref} is not available offline`);
    },
  };
}
