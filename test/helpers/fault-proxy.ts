/**
 * A loopback HTTP proxy in front of a real server (e.g. test/helpers/registry.ts) that injects faults
 * per rule and records every request. The Host header is passed through, so a registry builds its
 * upload Locations against the proxy and all later traffic flows through it too.
 *
 *   const proxy = await startFaultProxy({ upstream: reg.url });
 *   proxy.addRule({ method: 'PUT', path: /\/blobs\/uploads\//, action: { kind: 'drop-request', afterBytes: 10_000 } });
 *   … talk to proxy.host …
 *   proxy.requests  // [{ method, path, status, fault, headers, at }]
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FaultAction =
  /** Answer without forwarding (429 with Retry-After, 503, HTML error pages, …). */
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: string }
  /** Read this many bytes of the request body, then cut the connection (a dropped upload). */
  | { kind: 'drop-request'; afterBytes: number }
  /** Forward, but cut the connection after this many bytes of the response body. */
  | { kind: 'drop-response'; afterBytes: number }
  /** Forward, with one byte in the middle of the response body flipped (same length). */
  | { kind: 'corrupt-response' };

export interface FaultRule {
  method?: string;
  path?: RegExp;
  /** How many matching requests get the fault (default 1; Infinity for all). */
  times?: number;
  action: FaultAction;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  /** Status sent to the client (0 when the connection was cut before a response). */
  status: number;
  fault?: FaultAction['kind'];
  headers: Record<string, string | string[] | undefined>;
  /** Epoch ms when the request arrived. */
  at: number;
}

export interface FaultProxy {
  host: string;
  url: string;
  requests: ProxiedRequest[];
  addRule(rule: FaultRule): { hits(): number };
  clearRules(): void;
  stop(): Promise<void>;
}

interface ActiveRule {
  rule: FaultRule;
  remaining: number;
  hits: number;
}

export async function startFaultProxy(options: { upstream: string }): Promise<FaultProxy> {
  const upstream = new URL(options.upstream);
  const rules: ActiveRule[] = [];
  const requests: ProxiedRequest[] = [];

  function take(req: IncomingMessage): FaultAction | undefined {
    for (const r of rules) {
      if (r.remaining <= 0) continue;
      if (r.rule.method && r.rule.method !== req.method) continue;
      if (r.rule.path && !r.rule.path.test(req.url ?? '')) continue;
      r.remaining--;
      r.hits++;
      return r.rule.action;
    }
    return undefined;
  }

  function forward(req: IncomingMessage, res: ServerResponse, record: ProxiedRequest, action: FaultAction | undefined): void {
    const up = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        record.status = upRes.statusCode ?? 0;
        if (action?.kind === 'corrupt-response') {
          const chunks: Buffer[] = [];
          upRes.on('data', (c: Buffer) => chunks.push(c));
          upRes.on('end', () => {
            const body = Buffer.concat(chunks);
            if (body.length > 0) body[body.length >> 1] = body[body.length >> 1]! ^ 0xff;
            res.writeHead(upRes.statusCode ?? 502, upRes.headers);
            res.end(body);
          });
          return;
        }
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (action?.kind === 'drop-response') {
          let sent = 0;
          upRes.on('data', (c: Buffer) => {
            if (sent >= action.afterBytes) return;
            const part = c.subarray(0, action.afterBytes - sent);
            sent += part.length;
            res.write(part);
            if (sent >= action.afterBytes) {
              upRes.destroy();
              // Let the partial body reach the client, then cut the connection.
              setImmediate(() => res.socket?.destroy());
            }
          });
          upRes.on('end', () => res.end());
          return;
        }
        upRes.pipe(res);
      },
    );
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  }

  const server = createServer((req, res) => {
    const record: ProxiedRequest = { method: req.method ?? '', path: req.url ?? '', status: 0, headers: { ...req.headers }, at: Date.now() };
    requests.push(record);
    const action = take(req);
    if (action) record.fault = action.kind;
    if (action?.kind === 'respond') {
      req.resume();
      req.on('end', () => {
        record.status = action.status;
        const body = action.body ?? '';
        res.writeHead(action.status, { 'content-length': String(Buffer.byteLength(body)), ...action.headers });
        res.end(body);
      });
      return;
    }
    if (action?.kind === 'drop-request') {
      let seen = 0;
      const cut = () => {
        req.socket.destroy();
      };
      req.on('data', (c: Buffer) => {
        seen += c.length;
        if (seen >= action.afterBytes) cut();
      });
      req.on('end', cut);
      return;
    }
    forward(req, res, record, action);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    addRule(rule) {
      const active: ActiveRule = { rule, remaining: rule.times ?? 1, hits: 0 };
      rules.push(active);
      return { hits: () => active.hits };
    },
    clearRules() {
      rules.length = 0;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
