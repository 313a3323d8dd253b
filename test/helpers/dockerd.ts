/**
 * Starts a private Docker daemon (Debian's `docker.io`, dockerd 20.10) for an end-to-end test:
 * its own socket, data root, exec root and pidfile in a temp dir — never the machine's default
 * daemon or socket — with no bridge, no iptables and no masquerading, so it changes nothing of the
 * host's network. Containers must use `--network host` (only 127.0.0.1 is used).
 *
 *   const d = await startDockerd();
 *   await d.docker(['load', '-i', tar]);
 *   await d.stop();
 *
 * A machine without dockerd FAILS the test with a message naming the Debian package: an e2e test
 * that silently skips would let the container story rot unnoticed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The Docker client of the docker.io package (another, unrelated client may sit in /usr/local/bin). */
export const DOCKER_CLIENT = '/usr/bin/docker';

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestDockerd {
  /** `unix:///…/docker.sock` */
  host: string;
  socket: string;
  /** Runs `/usr/bin/docker -H <host> …args` with a private client config. */
  docker(args: string[], options?: { signal?: AbortSignal; input?: string }): Promise<DockerResult>;
  /** The daemon's log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

const SYSTEM_DIRS = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

function findExecutable(name: string): string | undefined {
  for (const dir of SYSTEM_DIRS) {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // next
    }
  }
  return undefined;
}

/** Pure: the daemon's argv for a temp dir. */
export function dockerdArgs(dir: string): string[] {
  return [
    '--bridge=none',
    '--iptables=false',
    '--ip-masq=false',
    '--data-root', join(dir, 'data'),
    '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'dockerd.pid'),
    '-H', `unix://${join(dir, 'docker.sock')}`,
    // No config file from /etc/docker and no "default" context: only what this test sets.
    '--config-file', join(dir, 'daemon.json'),
  ];
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/** Mount points at or below `dir` (deepest first), from /proc/self/mountinfo. */
function mountsBelow(dir: string): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => p === dir || p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
}

function run(file: string, args: string[], options: { env?: NodeJS.ProcessEnv; signal?: AbortSignal; input?: string } = {}): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(options.env ? { env: options.env } : {}), ...(options.signal ? { signal: options.signal } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.stdin.on('error', () => undefined); // EPIPE when the command never reads its input
    child.on('close', (code, sig) => resolve({ code: code ?? (sig ? 128 : -1), stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

export interface StartDockerdOptions {
  signal?: AbortSignal;
  /** Where dockerd is (default: searched in the system dirs); lets a test check the missing case. */
  binary?: string;
}

export async function startDockerd(options: StartDockerdOptions = {}): Promise<TestDockerd> {
  const dockerd = options.binary !== undefined ? (existsSync(options.binary) ? options.binary : undefined) : findExecutable('dockerd');
  if (!dockerd) {
    throw new Error('dockerd is not installed: the unprivileged-container e2e test needs the Debian package docker.io (apt-get install docker.io; .ci/run installs it)');
  }
  try {
    accessSync(DOCKER_CLIENT, constants.X_OK);
  } catch {
    throw new Error(`${DOCKER_CLIENT} is missing: install the Debian package docker.io (apt-get install docker.io; .ci/run installs it)`);
  }
  // Short path: the socket path must fit in sockaddr_un (108 bytes), containerd's below exec-root too.
  const dir = await mkdtemp('/tmp/stowage-dockerd-');
  const socket = join(dir, 'docker.sock');
  const clientConfig = join(dir, 'client');
  await mkdir(clientConfig);
  await writeFile(join(dir, 'daemon.json'), '{}\n');
  const logPath = join(dir, 'dockerd.log');
  const logFd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(dockerd, dockerdArgs(dir), { stdio: ['ignore', logFd, logFd], detached: false });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  child.on('error', () => undefined); // reported through the readiness loop below
  // A test process that dies without its after() hook must not leave a daemon behind; SIGTERM
  // (not KILL) so dockerd also stops the containerd it started.
  const onExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.once('exit', onExit);
  const log = (): string => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };

  const stop = async (): Promise<void> => {
    process.off('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    // dockerd unmounts its overlays on a clean stop; after a kill, unmount what is left so rm works.
    for (const m of mountsBelow(dir)) await run('umount', ['-l', m]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };

  try {
    for (let i = 0; ; i++) {
      options.signal?.throwIfAborted();
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`dockerd exited before it was ready (${child.exitCode ?? child.signalCode}):\n${log().slice(-3000)}`);
      }
      if (await ping(socket)) break;
      if (i > 600) throw new Error(`dockerd did not become ready in 60 s:\n${log().slice(-3000)}`);
      await sleep(100);
    }
  } catch (e) {
    await stop();
    throw e;
  }

  const host = `unix://${socket}`;
  return {
    host,
    socket,
    log,
    docker: (args, o = {}) =>
      run(DOCKER_CLIENT, ['-H', host, ...args], {
        // A private client config: never the user's ~/.docker, never a "current context".
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', DOCKER_CONFIG: clientConfig, HOME: dir },
        ...(o.signal ? { signal: o.signal } : {}),
        ...(o.input !== undefined ? { input: o.input } : {}),
      }),
    stop,
  };
}
