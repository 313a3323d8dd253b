import connectImpl from 'undici/lib/api/api-connect.js';
import PoolImpl from 'undici/lib/dispatcher/pool.js';
import ProxyAgentImpl from 'undici/lib/dispatcher/proxy-agent.js';
import type { Dispatcher, ProxyAgent } from 'undici';

/**
 * undici's ProxyAgent (CONNECT tunnels through an HTTP proxy), for the first proxied connection.
 * Most runs have no proxy: this module is imported dynamically (src/registry/client.ts) and
 * scripts/bundle.mjs gives it a bundle of its own, so its ~65 KB of undici (a SOCKS client among
 * them) are neither evaluated nor even deserialized from the code cache otherwise. Everything the
 * agent dispatches through — its Agent, the Pools it makes and the proxy's own client — comes from
 * this bundle's copy of undici.
 */
export function createProxyAgent(options: ProxyAgent.Options): Dispatcher {
  return new ProxyAgentImpl({
    ...options,
    // The agent opens tunnels with `client.connect(…)` (CONNECT), a method undici's main entry
    // installs on every dispatcher (Object.assign(Dispatcher.prototype, api)); stowage never loads
    // that entry in the registry path, so the proxy's client gets it here, on itself only.
    clientFactory: (origin: URL, opts: object) => Object.assign(new PoolImpl(origin, opts), { connect: connectImpl }),
  });
}
