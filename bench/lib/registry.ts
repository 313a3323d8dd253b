/**
 * A registry for one measurement: Debian's docker-registry (started by the tests' helper) behind a
 * loopback TCP proxy that counts the bytes each way. The proxy is what the tools talk to, so "bytes
 * uploaded" is what actually crossed the wire (headers included), whoever the client is; the
 * registry's access log gives the request count.
 */
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { startRegistry, type AccessLogEntry, type TestRegistry } from '../../test/helpers/registry.js';

export interface WireCounters {
  bytesUp: number;
  bytesDown: number;
  requests: number;
}

export interface BenchRegistry {
  /** `127.0.0.1:PORT` of the counting proxy: what image references name. */
  host: string;
  storageDir: string;
  /** Counters since the last `mark()`. */
  since(mark: WireMark): WireCounters;
  mark(): WireMark;
  accessLog(): AccessLogEntry[];
  stop(): Promise<void>;
}

export interface WireMark {
  bytesUp: number;
  bytesDown: number;
  logLength: number;
}

interface CountingProxy {
  port: number;
  counters: { up: number; down: number };
  close(): Promise<void>;
}

function startCountingProxy(targetPort: number): Promise<CountingProxy> {
  const counters = { up: 0, down: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    sockets.add(client).add(upstream);
    client.on('data', (d: Buffer) => void (counters.up += d.length));
    upstream.on('data', (d: Buffer) => void (counters.down += d.length));
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (s: Socket) => () => {
      sockets.delete(s);
      s.destroy();
    };
    client.on('error', end(upstream)).on('close', end(upstream));
    upstream.on('error', end(client)).on('close', end(client));
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        counters,
        close: () =>
          new Promise<void>((res) => {
            for (const s of sockets) s.destroy();
            server.close(() => res());
          }),
      });
    });
  });
}

export async function startBenchRegistry(): Promise<BenchRegistry> {
  const registry: TestRegistry = await startRegistry();
  let proxy: CountingProxy;
  try {
    proxy = await startCountingProxy(Number(registry.host.split(':')[1]));
  } catch (e) {
    await registry.stop();
    throw e;
  }
  // The helper's readiness probe (GET /v2/) reaches the access log a moment later; wait for it so the
  // first measured run does not count it.
  for (let i = 0; i < 100 && registry.accessLog().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  return {
    host: `127.0.0.1:${proxy.port}`,
    storageDir: registry.storageDir,
    accessLog: () => registry.accessLog(),
    mark: () => ({ bytesUp: proxy.counters.up, bytesDown: proxy.counters.down, logLength: registry.accessLog().length }),
    since: (m) => ({
      bytesUp: proxy.counters.up - m.bytesUp,
      bytesDown: proxy.counters.down - m.bytesDown,
      requests: registry.accessLog().length - m.logLength,
    }),
    stop: async () => {
      await proxy.close();
      await registry.stop();
    },
  };
}

/** Runs `fn` with a fresh registry that is always stopped afterwards. */
export async function withRegistry<T>(fn: (r: BenchRegistry) => Promise<T>): Promise<T> {
  const r = await startBenchRegistry();
  try {
    return await fn(r);
  } finally {
    await r.stop();
  }
}
