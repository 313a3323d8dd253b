/**
 * Registry authentication: challenges, credentials from docker's config, Docker token flow, Basic.
 *
 * Credentials and tokens never leave this module in messages: errors name the registry and what
 * to do, never a username, password or token.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { StowageError } from '../util/errors.js';
import { DOCKER_HUB } from './reference.js';

export interface Credentials {
  username: string;
  password: string;
}

/** A source of credentials per registry name (as in references, e.g. `docker.io`, `localhost:5000`). */
export type CredentialSource = (registry: string, signal?: AbortSignal) => Promise<Credentials | undefined>;

export interface Challenge {
  scheme: 'bearer' | 'basic';
  realm?: string;
  service?: string;
  /** Scope the server asked for (a 401 with `error="insufficient_scope"` names it). */
  scope?: string;
  error?: string;
}

/** Parses `Bearer realm="…",service="…",scope="…"`; undefined for an unknown scheme. */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'bearer' && scheme !== 'basic') return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/g;
  for (let p = re.exec(m[2] ?? ''); p; p = re.exec(m[2] ?? '')) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  const c: Challenge = { scheme };
  if (params.realm !== undefined) c.realm = params.realm;
  if (params.service !== undefined) c.service = params.service;
  if (params.scope !== undefined) c.scope = params.scope;
  if (params.error !== undefined) c.error = params.error;
  return c;
}

export type RepoAction = 'pull' | 'push' | 'delete';

/** `repository:<repo>:<actions>`. */
export function repositoryScope(repository: string, actions: readonly RepoAction[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

/**
 * Scopes for uploading into `repository` (pull,push), plus pull on each mount source. Push scopes
 * come first: "a few registries just look at the first scope" (REGISTRY.md §4).
 */
export function scopesForPush(repository: string, mountSources: readonly string[] = []): string[] {
  const out = [repositoryScope(repository, ['pull', 'push'])];
  for (const src of [...new Set(mountSources)].sort()) if (src !== repository) out.push(repositoryScope(src, ['pull']));
  return out;
}

/** Cache key for a set of scopes: push scopes first, then the rest, each group sorted; duplicates removed. */
export function scopeSetKey(scopes: readonly string[]): string {
  const uniq = [...new Set(scopes)];
  const push = uniq.filter((s) => /[:,]push(,|$)/.test(s)).sort();
  const rest = uniq.filter((s) => !/[:,]push(,|$)/.test(s)).sort();
  return [...push, ...rest].join(' ');
}

export interface Token {
  token: string;
  /** Epoch ms after which the token should be refreshed (80 % of its lifetime). */
  refreshAt: number;
}

/** Lifetime handling per REGISTRY.md §8.1: default 60 s, floor 60 s, refresh at 80 %. */
export function tokenRefreshAt(issuedAtMs: number, expiresInSeconds: number | undefined): number {
  const lifetime = Math.max(60, expiresInSeconds ?? 60) * 1000;
  return issuedAtMs + Math.floor(lifetime * 0.8);
}

export function basicAuthorization(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

// ---- docker config ----

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** Keys docker uses for a registry in `auths`: the bare host, with scheme, and Hub's legacy URL. */
export function dockerConfigKeys(registry: string): string[] {
  if (registry === DOCKER_HUB) {
    return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'https://docker.io', 'registry-1.docker.io'];
  }
  return [registry, `https://${registry}`, `http://${registry}`, `https://${registry}/v1/`, `https://${registry}/v2/`, `http://${registry}/v2/`];
}

function normalizeAuthKey(key: string): string {
  return key.replace(/^https?:\/\//, '').replace(/\/(v1|v2)?\/?$/, '');
}

export interface DockerConfigOptions {
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json` (an empty variable counts as unset, as in docker). */
export function dockerConfigPath(env: NodeJS.ProcessEnv): string {
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  return join(dir, 'config.json');
}

async function readDockerConfig(path: string): Promise<DockerConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StowageError('registry/docker-config', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`, {
      hint: 'fix the file permissions or point DOCKER_CONFIG at another directory',
    });
  }
  try {
    return JSON.parse(text) as DockerConfigFile;
  } catch {
    throw new StowageError('registry/docker-config', `${path} is not valid JSON`, { hint: 'fix the file or run docker login again', file: path });
  }
}

/** Runs `docker-credential-<helper> get` with the server URL on stdin (docker's helper protocol). */
async function runCredentialHelper(helper: string, server: string, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<Credentials | undefined> {
  const program = `docker-credential-${helper}`;
  // Loaded here: only a docker config with credHelpers/credsStore needs it, and a built-in costs
  // its compile at every start.
  const { spawn } = await import('node:child_process');
  const out = await new Promise<{ code: number | null; stdout: string; spawnError?: NodeJS.ErrnoException }>((resolve) => {
    const child = spawn(program, ['get'], { env, stdio: ['pipe', 'pipe', 'ignore'], ...(signal ? { signal } : {}) });
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (stdout += d));
    child.on('error', (err: NodeJS.ErrnoException) => resolve({ code: null, stdout: '', spawnError: err }));
    child.on('close', (code) => resolve({ code, stdout }));
    child.stdin.on('error', () => {});
    child.stdin.end(server);
  });
  if (out.spawnError) {
    if (out.spawnError.code === 'ENOENT') {
      throw new StowageError('registry/credential-helper', `credential helper ${program} for ${server} is not installed`, {
        hint: `install ${program} or remove it from your docker config`,
      });
    }
    throw new StowageError('registry/credential-helper', `credential helper ${program} failed to start for ${server}`, { hint: 'check the helper installation' });
  }
  // Helpers print "credentials not found in native keychain" and exit 1 when they have none.
  if (out.code !== 0) return undefined;
  let parsed: { Username?: string; Secret?: string };
  try {
    parsed = JSON.parse(out.stdout) as { Username?: string; Secret?: string };
  } catch {
    throw new StowageError('registry/credential-helper', `credential helper ${program} returned malformed output for ${server}`, {
      hint: 'check the helper with `echo <server> | ' + program + ' get`',
    });
  }
  if (!parsed.Secret) return undefined;
  return { username: parsed.Username ?? '', password: parsed.Secret };
}

/**
 * Credentials from docker's config: `credHelpers[registry]`, then `auths` (base64 `auth` or
 * username/password), then `credsStore`, as docker resolves them.
 */
export function dockerConfigCredentials(options: DockerConfigOptions = {}): CredentialSource {
  const env = options.env ?? process.env;
  return async (registry, signal) => {
    const config = await readDockerConfig(dockerConfigPath(env));
    if (!config) return undefined;
    const keys = dockerConfigKeys(registry);
    const helper = config.credHelpers?.[registry] ?? keys.map((k) => config.credHelpers?.[k]).find((h) => h !== undefined);
    if (helper) return runCredentialHelper(helper, registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry, env, signal);
    const auths = config.auths ?? {};
    const wanted = new Set(keys.map(normalizeAuthKey));
    const entryKey = keys.find((k) => auths[k] !== undefined) ?? Object.keys(auths).find((k) => wanted.has(normalizeAuthKey(k)));
    const entry = entryKey !== undefined ? auths[entryKey] : undefined;
    if (entry) {
      if (entry.identitytoken) return { username: '<token>', password: entry.identitytoken };
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        if (colon < 0) {
          throw new StowageError('registry/docker-config', `the auth entry for ${registry} in ${dockerConfigPath(env)} is malformed`, {
            hint: `run 'docker login ${registry}' again`,
          });
        }
        return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
      }
      if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
    }
    if (config.credsStore) return runCredentialHelper(config.credsStore, registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry, env, signal);
    return undefined;
  };
}

/** Credentials fixed per registry (tests, `--creds`); falls back to `fallback` for other registries. */
export function staticCredentials(map: Record<string, Credentials>, fallback?: CredentialSource): CredentialSource {
  return async (registry, signal) => map[registry] ?? (fallback ? fallback(registry, signal) : undefined);
}
