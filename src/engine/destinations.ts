/**
 * Where a built image goes: `oci:` layouts, `docker-archive:` files and registry references, parsed
 * and written. Apart from the build itself (./build-image.ts), so a run that only reuses images
 * it built before writes them without loading the stage runner.
 */
import { resolve as resolvePath } from 'node:path';
import type { Image } from '../image/blob.js';
import { StowageError } from '../util/errors.js';
import { parseDockerArchiveReference, parseOciReference } from '../store/references.js';


export type Destination =
  | { kind: 'oci'; dir: string; tag: string; text: string }
  | { kind: 'docker-archive'; file: string; refs: string[]; text: string }
  | { kind: 'registry'; ref: string; text: string };

/**
 * `oci:<dir>[:tag]`, `docker-archive:<file>[:ref]`, otherwise a registry reference. Like skopeo,
 * the path ends at the first `:` after the transport.
 */
export function parseDestination(text: string): Destination {
  // The same parsers as spec destinations and `stowage copy` (skopeo's rules for oci:/docker-archive:).
  if (text.startsWith('oci:')) {
    const r = parseOciReference(text);
    return { kind: 'oci', dir: r.dir, tag: r.tag ?? 'latest', text };
  }
  if (text.startsWith('docker-archive:')) {
    const r = parseDockerArchiveReference(text);
    return { kind: 'docker-archive', file: r.file, refs: r.ref === undefined ? [] : [r.ref], text };
  }
  return { kind: 'registry', ref: text, text };
}

export interface PushProgress {
  /** Told the size of each piece of blob body sent (blobs another push already sent are not counted again). */
  onBytesSent?: (bytes: number) => void;
}

export interface DestinationPorts extends PushProgress {
  /** Pushes to registry refs; absent when pushing is disabled (a registry destination is then an error). */
  push?: (image: Image, ref: string, signal: AbortSignal, progress?: PushProgress) => Promise<void>;
  signal: AbortSignal;
}

export interface WrittenDestination {
  destination: string;
  digest: string;
}

/** Writes the image to every destination. Local files go to a temp name first, then are renamed. */
export async function writeDestinations(image: Image, destinations: readonly (string | Destination)[], ports: DestinationPorts): Promise<WrittenDestination[]> {
  const out: WrittenDestination[] = [];
  const parsed = destinations.map((d) => (typeof d === 'string' ? parseDestination(d) : d));
  // Group oci: destinations per directory so several tags land in one index.json write.
  const ociTags = new Map<string, string[]>();
  for (const d of parsed) if (d.kind === 'oci') ociTags.set(resolvePath(d.dir), [...(ociTags.get(resolvePath(d.dir)) ?? []), d.tag]);
  const { writeImageToLayout } = await import('../store/oci-layout.js');
  for (const [dir, tags] of ociTags) await writeImageToLayout(dir, image, { tags, signal: ports.signal });
  for (const d of parsed) {
    switch (d.kind) {
      case 'oci':
        out.push({ destination: d.text, digest: image.digest });
        break;
      case 'docker-archive': {
        const { writeDockerArchive } = await import('../store/docker-archive.js');
        const file = resolvePath(d.file);
        await writeDockerArchive(file, image, { refs: d.refs, signal: ports.signal });
        out.push({ destination: d.text, digest: image.digest });
        break;
      }
      case 'registry':
        if (!ports.push) {
          throw new StowageError('build/no-push', `cannot push to ${d.ref}: pushing is disabled`, { hint: 'remove --no-push, or use an oci: or docker-archive: destination' });
        }
        await ports.push(image, d.ref, ports.signal, ports.onBytesSent ? { onBytesSent: ports.onBytesSent } : {});
        out.push({ destination: d.text, digest: image.digest });
        break;
      default: {
        const never: never = d;
        throw new Error(`unknown destination ${JSON.stringify(never)}`);
      }
    }
  }
  return out;
}

/** Digest files and the like: written to a temp name, then renamed (re-exported for the CLI). */
export { writeFileAtomic } from '../store/atomic.js';
