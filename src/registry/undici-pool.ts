/**
 * undici's Pool and its `request`, taken from undici's own files rather than its main entry: the
 * entry loads ~110 modules (fetch, WebSocket, mock agents, cache stores…) that stowage never uses,
 * ~35 ms of every run's startup; these two load 24. `request` is undici's api-request, the function
 * the main entry installs as `Dispatcher.prototype.request`; here it is called on the pool instead,
 * so nothing of undici's is patched. (undici declares no `exports` map: these paths are importable;
 * the lockfile pins the version, and an undici whose layout moved fails at startup, in every test.)
 */
import PoolImpl from 'undici/lib/dispatcher/pool.js';
import requestImpl from 'undici/lib/api/api-request.js';
import type { Dispatcher, Pool } from 'undici';

export type { Pool };

export function createPool(origin: string, options: Pool.Options): Pool {
  return new PoolImpl(origin, options);
}

export function poolRequest(pool: Pool, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
  return requestImpl.call(pool, options);
}
