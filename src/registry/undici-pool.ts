/**
 * undici's Pool and its `request`, taken from undici's own files rather than its main entry: the
 * entry loads ~110 modules (fetch, WebSocket, mock agents, cache stores…) that stowage never uses,
 * ~35 ms of every run's startup; these two load 24 (and scripts/bundle.mjs bundles them). `request`
 * is undici's api-request, the function the main entry installs as `Dispatcher.prototype.request`;
 * here it is called on the pool instead, so nothing of undici's is patched. (undici declares no
 * `exports` map: these paths are importable; the lockfile pins the version, and an undici whose
 * layout moved fails at startup, in every test.)
 */
import { setFlagsFromString } from 'node:v8';
import PoolImpl from 'undici/lib/dispatcher/pool.js';
import requestImpl from 'undici/lib/api/api-request.js';
import type { Dispatcher, Pool } from 'undici';

export type { Pool };

export function createPool(origin: string, options: Pool.Options): Pool {
  return new PoolImpl(origin, options);
}

/**
 * Sends requests through undici, compiling its HTTP parser with V8's baseline WebAssembly compiler
 * only. undici parses HTTP with llhttp, a WebAssembly module it compiles once per process at its
 * first connection; by default V8 then recompiles it with TurboFan on background threads — ~35 MiB
 * of peak RSS and 60–100 ms of CPU per run (bench/micro/small-case.ts), for a parser that only
 * ever sees headers and chunk boundaries here.
 *
 * The flag is on only while the first request is in flight (its connection compiles the parser),
 * not for the whole run: any V8 flag that differs from its default makes the code cache embedded
 * in the node binary mismatch, and every Node built-in loaded meanwhile is compiled from source
 * (a dozen built-ins: 18 -> 46 ms). `--liftoff-only` implies `--no-wasm-dynamic-tiering` and
 * `--no-wasm-tier-up`, so all three are put back.
 */
export class PoolRequester {
  private firstDone = false;

  request(pool: Dispatcher, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
    if (this.firstDone) return requestImpl.call(pool, options);
    this.firstDone = true;
    setFlagsFromString('--liftoff-only');
    let response: Promise<Dispatcher.ResponseData>;
    try {
      response = requestImpl.call(pool, options);
    } catch (e) {
      restoreWasmTiering();
      throw e;
    }
    response.then(restoreWasmTiering, restoreWasmTiering);
    return response;
  }
}

function restoreWasmTiering(): void {
  setFlagsFromString('--no-liftoff-only');
  setFlagsFromString('--wasm-dynamic-tiering');
  setFlagsFromString('--wasm-tier-up');
}
