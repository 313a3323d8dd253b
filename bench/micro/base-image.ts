/** The micro benchmarks' base image: busybox (built by stowage's test helper), pushed with skopeo. */
import { execFileSync } from 'node:child_process';
import { busyboxLayout } from '../../test/helpers/busybox-image.js';

/** Pushes the busybox base to `ref` on a plain-HTTP registry (skopeo, independent of stowage). */
export async function pushBusyboxBase(ref: string): Promise<void> {
  const base = await busyboxLayout();
  execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${base.dir}:${base.tag}`, `docker://${ref}`]);
}
