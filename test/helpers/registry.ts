/**
 * Starts Debian's real registry (`/usr/bin/docker-registry`, distribution 2.8) for a test, on a free
 * loopback port with its own temp storage (filesystem driver, delete enabled), optionally with
 * htpasswd (bcrypt via `htpasswd -B`, Debian package apache2-utils) or token auth (test/helpers/token-issuer.ts).
 *
 *   const reg = await startRegistry({ auth: 'htpasswd' });
 *   … reg.host, reg.url, reg.username, reg.password, reg.accessLog() …
 *   await reg.stop();
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startTokenIssuer, type TokenIssuer } from './token-issuer.js';

export type RegistryAuth = 'none' | 'htpasswd' | 'token';

export interface StartRegistryOptions {
  auth?: RegistryAuth;
  username?: string;
  password?: string;
  /** Token lifetime in seconds (token auth only). */
  tokenExpiresIn?: number;
  /** Let anonymous token requests pull (token auth only). */
  anonymousPull?: boolean;
}

export interface AccessLogEntry {
  method: string;
  path: string;
  status: number;
  /** Response bytes as the registry logged them. */
  bytes: number;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` — what a reference names. */
  host: string;
  url: string;
  storageDir: string;
  username: string;
  password: string;
  /** Present with `auth: 'token'`. */
  tokenIssuer?: TokenIssuer;
  /** Requests the registry served so far, parsed from its access log. */
  accessLog(): AccessLogEntry[];
  /**
   * The access log once it has caught up: the registry writes a line after it answers, and the pipe
   * brings it later still, so a count read right after the last response can be one short under load.
   * Waits until the log has `min` entries and no output arrived for 150 ms (at most 5 s).
   */
  settledAccessLog(min?: number): Promise<AccessLogEntry[]>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

// 127.0.0.1 - - [03/Dec/2026:17:00:00 +0000] "PUT /v2/a/blobs/uploads/x?digest=… HTTP/1.1" 201 0 "" "ua"
const ACCESS_LINE = /"([A-Z]+) (\S+) HTTP\/[0-9.]+" (\d{3}) (\d+|-)/;

export function parseAccessLog(text: string): AccessLogEntry[] {
  const out: AccessLogEntry[] = [];
  for (const line of text.split('\n')) {
    const m = ACCESS_LINE.exec(line);
    if (m) out.push({ method: m[1]!, path: m[2]!, status: Number(m[3]), bytes: m[4] === '-' ? 0 : Number(m[4]) });
  }
  return out;
}

/** Polls GET /v2/ until it answers (200, or 401 with auth); false if the process exited first. */
async function waitReady(url: string, proc: ChildProcess, stderr: () => string): Promise<boolean> {
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null || proc.signalCode !== null) return false;
    try {
      const res = await request(`${url}/v2/`);
      await res.body.dump();
      if (res.statusCode === 200 || res.statusCode === 401) return true;
    } catch {
      // not listening yet
    }
    if (i > 400) throw new Error(`docker-registry did not become ready: ${stderr().slice(-2000)}`);
    await sleep(25);
  }
}

export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = options.auth ?? 'none';
  const username = options.username ?? 'stowage';
  const password = options.password ?? 'secret-pass-123';
  const dir = await mkdtemp(join(tmpdir(), 'stowage-registry-'));
  const storageDir = join(dir, 'storage');
  let tokenIssuer: TokenIssuer | undefined;
  let child: ChildProcess | undefined;
  try {
    let authConfig = '';
    if (auth === 'htpasswd') {
      const htpasswdPath = join(dir, 'htpasswd');
      // -B bcrypt (the registry accepts nothing else), -C 4 keeps it fast, -i reads the password from stdin.
      execFileSync('htpasswd', ['-B', '-C', '4', '-i', '-c', htpasswdPath, username], { input: password, stdio: ['pipe', 'ignore', 'ignore'] });
      authConfig = `auth:\n  htpasswd:\n    realm: stowage-test\n    path: ${htpasswdPath}\n`;
    } else if (auth === 'token') {
      tokenIssuer = await startTokenIssuer({
        dir,
        username,
        password,
        ...(options.tokenExpiresIn !== undefined ? { expiresIn: options.tokenExpiresIn } : {}),
        ...(options.anonymousPull !== undefined ? { anonymousPull: options.anonymousPull } : {}),
      });
      authConfig =
        `auth:\n  token:\n    realm: ${tokenIssuer.realm}\n    service: ${tokenIssuer.service}\n` +
        `    issuer: ${tokenIssuer.issuer}\n    rootcertbundle: ${tokenIssuer.certPath}\n`;
    }
    // Another test may grab the free port before the registry binds it: try a few ports.
    let port = 0;
    // The registry writes its access log (stdout) and errors (stderr) to a file, not a pipe: a pipe
    // is drained only while this process's event loop runs, so a test blocked in execFileSync (skopeo
    // against this registry) let it fill, and the registry then hung writing its log.
    let logPath = '';
    let lastSize = -1;
    let lastChangeAt = Date.now();
    const readLog = (): string => {
      try {
        return readFileSync(logPath, 'utf8');
      } catch {
        return '';
      }
    };
    let proc: ChildProcess | undefined;
    let exited: Promise<void> = Promise.resolve();
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const configPath = join(dir, 'config.yml');
      await writeFile(
        configPath,
        `version: 0.1\n` +
          `log:\n  level: error\n  formatter: text\n  accesslog:\n    disabled: false\n` +
          `storage:\n  filesystem:\n    rootdirectory: ${storageDir}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n` +
          `http:\n  addr: 127.0.0.1:${port}\n  secret: stowage-test-secret\n` +
          authConfig,
      );
      logPath = join(dir, `registry-${attempt}.log`);
      const logFd = openSync(logPath, 'w');
      let p: ChildProcess;
      try {
        p = spawn('/usr/bin/docker-registry', ['serve', configPath], { stdio: ['ignore', logFd, logFd] });
      } finally {
        closeSync(logFd);
      }
      proc = p;
      child = p;
      exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
      if (await waitReady(`http://127.0.0.1:${port}`, p, readLog)) break;
      await exited;
      const output = readLog();
      if (attempt >= 3 || !/address already in use/.test(output)) throw new Error(`docker-registry exited (${p.exitCode}): ${output.slice(-2000)}`);
    }
    const url = `http://127.0.0.1:${port}`;
    const running = proc!;

    return {
      host: `127.0.0.1:${port}`,
      url,
      storageDir,
      username,
      password,
      ...(tokenIssuer ? { tokenIssuer } : {}),
      // gorilla's CombinedLoggingHandler writes the access log to stdout (here: the log file).
      accessLog: () => parseAccessLog(readLog()),
      settledAccessLog: async (min = 0) => {
        const deadline = Date.now() + 5000;
        for (;;) {
          const text = readLog();
          if (text.length !== lastSize) {
            lastSize = text.length;
            lastChangeAt = Date.now();
          }
          const log = parseAccessLog(text);
          if ((log.length >= min && Date.now() - lastChangeAt >= 150) || Date.now() > deadline) return log;
          await sleep(25);
        }
      },
      stop: async () => {
        if (running.exitCode === null) {
          running.kill('SIGTERM');
          const killTimer = setTimeout(() => running.kill('SIGKILL'), 3000);
          await exited;
          clearTimeout(killTimer);
        }
        await tokenIssuer?.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await tokenIssuer?.stop();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
