/**
 * `stowage plan --resolve`'s registry side, a module of its own so the plan command loads the
 * registry client (and scripts/bundle.mjs puts it in a bundle of its own) only when asked to.
 */
import type { ResolvedBase } from '../cache/plan-graph.js';
import { registryCacheHas } from '../cache/registry-cache.js';
import { formatPlatform } from '../image/platform.js';
import type { Platform } from '../image/types.js';
import { dockerConfigCredentials } from '../registry/auth.js';
import { RegistryClient } from '../registry/client.js';
import { proxyConfigFromEnv } from '../registry/proxy.js';
import { fetchImageMetadata } from '../registry/pull.js';
import { parseReference } from '../registry/reference.js';
import type { TlsTrust } from '../registry/tls-trust.js';
import { FsBlobStore } from '../store/blob-store.js';
import { errorMessage } from '../util/errors.js';

/**
 * External base images as a build resolves them (manifest for the platform, config; no layers),
 * through a registry client like the build's, and the spec's cache repo (`cache.repo`) for steps
 * the local index lacks. A base that cannot be resolved, or a cache repo that cannot be asked, is a
 * warning: the steps stay unknown or show what the local cache says, and the plan is still right.
 */
export async function registryBases(cacheDir: string, env: Record<string, string | undefined>, o: { insecureRegistries: string[]; tls?: TlsTrust }, cache: { repo: string | undefined; ttlMs?: number }) {
  const cacheRepo = cache.repo;
  const proxy = proxyConfigFromEnv(env);
  const client = new RegistryClient({ credentials: dockerConfigCredentials({ env }), insecureRegistries: o.insecureRegistries, ...(o.tls ? { tls: o.tls } : {}), ...(proxy ? { proxy } : {}) });
  const store = await FsBlobStore.open(cacheDir);
  const resolved = new Map<string, Promise<ResolvedBase | undefined>>();
  let cacheRepoDown = false;
  return {
    async inCacheRepo(key: string, signal: AbortSignal): Promise<boolean> {
      if (cacheRepo === undefined || cacheRepoDown) return false;
      try {
        return await registryCacheHas({ repo: cacheRepo, client, store, ...(cache.ttlMs !== undefined ? { ttlMs: cache.ttlMs } : {}) }, key, signal);
      } catch (e) {
        cacheRepoDown = true;
        process.stderr.write(`stowage plan: warning: cannot ask the cache repo ${cacheRepo} (${errorMessage(e)}); steps show the local cache only\n`);
        return false;
      }
    },
    resolve(ref: string, platform: Platform, signal: AbortSignal): Promise<ResolvedBase | undefined> {
      const key = `${ref}\0${formatPlatform(platform)}`;
      let r = resolved.get(key);
      if (!r) {
        r = fetchImageMetadata(parseReference(ref), { client, store, platform, signal }).then(
          ({ image }) => ({ digest: image.digest, config: image.config.config ?? {} }),
          (e: unknown) => {
            process.stderr.write(`stowage plan: warning: cannot resolve ${ref} (${errorMessage(e)}); the steps on it show [?]\n`);
            return undefined;
          },
        );
        resolved.set(key, r);
      }
      return r;
    },
    close: () => client.close(),
  };
}
