/**
 * Unpacked base layers, once per machine: `<cacheDir>/layers/<diffId hex>/` holds the layer's tree
 * (with overlay whiteout markers when unpacked as root, so it can be an overlay lower directly), and
 * `<diffId hex>.meta.json` beside it records the layer's whiteouts and opaque dirs as data.
 *
 * A layer is unpacked into a temp dir, verified against its diffId, and renamed into place; a dir
 * under its final name is complete and never modified again. Concurrent requests within this
 * process share one flight; across processes the atomic rename decides and the loser discards its copy.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StowageError } from '../util/errors.js';
import type { Layer } from '../image/blob.js';
import { digestHex, type Digest } from '../image/digest.js';
import { unpackLayer } from './unpack.js';

export interface UnpackedLayerStoreOptions {
  /** Keep ownership, devices, trusted.* xattrs and write overlay whiteouts. Default: running as uid 0. */
  asRoot?: boolean;
  onWarning?: (message: string) => void;
}

export interface UnpackedLayerMeta {
  diffId: Digest;
  whiteouts: string[];
  opaqueDirs: string[];
}

export class UnpackedLayerStore {
  readonly layersDir: string;
  private readonly flights = new Map<string, Promise<string>>();
  private readonly asRoot: boolean;

  constructor(
    cacheDir: string,
    private readonly options: UnpackedLayerStoreOptions = {},
  ) {
    this.layersDir = join(cacheDir, 'layers');
    this.asRoot = options.asRoot ?? process.getuid?.() === 0;
  }

  /** Where the layer with this diffId is (or would be) unpacked. */
  dirOf(diffId: Digest): string {
    return join(this.layersDir, digestHex(diffId));
  }

  has(diffId: Digest): boolean {
    return existsSync(this.dirOf(diffId));
  }

  /** The unpacked dir of `layer`, unpacking it first if no process has yet. */
  ensureUnpacked(layer: Layer, signal?: AbortSignal): Promise<string> {
    const key = layer.diffId;
    let flight = this.flights.get(key);
    if (flight === undefined) {
      flight = this.unpack(layer, signal).finally(() => this.flights.delete(key));
      this.flights.set(key, flight);
    }
    return flight;
  }

  private async unpack(layer: Layer, signal: AbortSignal | undefined): Promise<string> {
    const final = this.dirOf(layer.diffId);
    if (existsSync(final)) return final;
    mkdirSync(this.layersDir, { recursive: true });
    const tmp = mkdtempSync(join(this.layersDir, `.tmp-${digestHex(layer.diffId).slice(0, 12)}-`));
    try {
      chmodSync(tmp, 0o755); // the tree's root becomes "/" of a rootfs
      const stream = await layer.open(signal);
      const unpackOptions: Parameters<typeof unpackLayer>[2] = { asRoot: this.asRoot, whiteouts: this.asRoot ? 'overlay' : 'record' };
      if (signal) unpackOptions.signal = signal;
      if (this.options.onWarning) unpackOptions.onWarning = this.options.onWarning;
      const r = await unpackLayer(stream, tmp, unpackOptions);
      if (r.diffId !== layer.diffId) {
        throw new StowageError('store/diffid-mismatch', `layer ${layer.descriptor.digest} unpacks to ${r.diffId}, not its diffId ${layer.diffId}`, {
          hint: 'the image config and its layer disagree; the image is corrupt',
        });
      }
      const meta: UnpackedLayerMeta = { diffId: layer.diffId, whiteouts: r.whiteouts, opaqueDirs: r.opaqueDirs };
      // The meta file is in place before the dir is, so a visible dir always has its meta.
      const metaTmp = `${tmp}.meta.json`;
      writeFileSync(metaTmp, JSON.stringify(meta));
      renameSync(metaTmp, `${final}.meta.json`);
      try {
        renameSync(tmp, final);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(final)) {
          rmSync(tmp, { recursive: true, force: true }); // another process finished first
          return final;
        }
        throw e;
      }
      return final;
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      rmSync(`${tmp}.meta.json`, { force: true });
      throw e;
    }
  }
}
