#!/usr/bin/env node
/**
 * Entry of the stowage GitHub Action (../../action.yml): runs `stowage build -f <file>
 * --metadata-file <tmp>` with the action's inputs and sets the step outputs `metadata` (the JSON
 * stowage wrote) and `digests` (JSON object image → digest) through $GITHUB_OUTPUT.
 *
 * Credentials (`username`/`password` for `registry`) go into a temporary DOCKER_CONFIG made for
 * this run only (0700 dir, 0600 config.json, merged over the runner's existing config so
 * credHelpers keep working), handed to stowage and removed afterwards. They are never printed,
 * never passed on in the environment, and never written anywhere else.
 *
 * Inputs arrive as INPUT_<NAME> environment variables (action.yml maps them), as GitHub does for
 * JavaScript actions. Plain Node, no dependencies: the runner's node runs it.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DOCKER_HUB_KEY = 'https://index.docker.io/v1/';

/** A one-line failure the runner shows as an annotation. */
export class ActionError extends Error {}

/** Pure: the action's inputs from the environment, validated. */
export function readInputs(env) {
  const get = (name) => (env[`INPUT_${name.toUpperCase().replace(/-/g, '_')}`] ?? '').trim();
  const file = get('file') || 'stowage.yaml';
  const pushText = (get('push') || 'true').toLowerCase();
  if (pushText !== 'true' && pushText !== 'false') throw new ActionError(`input 'push' must be true or false, not ${JSON.stringify(pushText)}`);
  const username = get('username');
  const password = env.INPUT_PASSWORD ?? ''; // not trimmed: a password may end in a space
  if ((username === '') !== (password === '')) {
    throw new ActionError(`inputs 'username' and 'password' go together: ${username ? "'password' is empty (is the secret set for this repository?)" : "'username' is empty"}`);
  }
  return {
    file,
    images: get('images').split(/[\s,]+/).filter((s) => s !== ''),
    push: pushText === 'true',
    cacheRepo: get('cache-repo'),
    registry: get('registry'),
    username,
    password,
    stowage: get('stowage') || 'stowage',
  };
}

/** Pure: `stowage build` argv for the inputs. */
export function buildArgs(inputs, metadataFile) {
  const args = ['build', '-f', inputs.file, '--metadata-file', metadataFile];
  if (!inputs.push) args.push('--no-push');
  if (inputs.cacheRepo) args.push('--cache-repo', inputs.cacheRepo);
  args.push(...inputs.images);
  return args;
}

/** Pure: the config.json key docker uses for a registry (Docker Hub's is historic). */
export function authKey(registry) {
  if (registry === '' || registry === 'docker.io' || registry === 'index.docker.io' || registry === 'registry-1.docker.io') return DOCKER_HUB_KEY;
  return registry.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

/** Pure: the runner's docker config with this registry's credentials added (others untouched). */
export function configWithCredentials(existing, registry, username, password) {
  const config = existing && typeof existing === 'object' ? { ...existing } : {};
  const key = authKey(registry);
  config.auths = { ...(config.auths ?? {}), [key]: { auth: Buffer.from(`${username}:${password}`, 'utf8').toString('base64') } };
  // A credHelper for this registry would win over `auths`; the given credentials must be used.
  if (config.credHelpers && key in config.credHelpers) {
    config.credHelpers = { ...config.credHelpers };
    delete config.credHelpers[key];
  }
  return config;
}

/**
 * Pure: image → digest from stowage's metadata. Accepts `{images: {name: {digest}}}`,
 * `{images: [{name, digest}]}` and buildx-bake style `{name: {"containerimage.digest"}}`.
 */
export function digestsFromMetadata(metadata) {
  const out = {};
  const digestOf = (v) => (v && typeof v === 'object' ? v.digest ?? v['containerimage.digest'] : undefined);
  const images = metadata && typeof metadata === 'object' && 'images' in metadata ? metadata.images : metadata;
  if (Array.isArray(images)) {
    for (const i of images) if (i && typeof i.name === 'string' && typeof digestOf(i) === 'string') out[i.name] = digestOf(i);
  } else if (images && typeof images === 'object') {
    for (const [name, v] of Object.entries(images)) if (typeof digestOf(v) === 'string') out[name] = digestOf(v);
  }
  return out;
}

/** Pure: one `name<<delimiter` block of the $GITHUB_OUTPUT file format (multi-line safe). */
export function outputBlock(name, value) {
  let delimiter = `ghadelimiter_${randomUUID()}`;
  while (value.includes(delimiter)) delimiter = `ghadelimiter_${randomUUID()}`;
  return `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
}

function runStowage(file, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    const forward = (sig) => child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', (e) => {
      reject(e.code === 'ENOENT' ? new ActionError(`cannot run ${file}: not found; install stowage on the runner (npm install -g stowage) or set the 'stowage' input to its path`) : e);
    });
    child.on('close', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

export async function main(env = process.env) {
  const inputs = readInputs(env);
  if (!existsSync(inputs.file)) throw new ActionError(`the spec file ${inputs.file} does not exist (input 'file', relative to ${process.cwd()}); check out the repository first (actions/checkout)`);
  const work = mkdtempSync(join(env.RUNNER_TEMP || tmpdir(), 'stowage-action-'));
  chmodSync(work, 0o700);
  try {
    // Credentials never reach stowage's environment as INPUT_* variables.
    const childEnv = Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('INPUT_')));
    if (inputs.username) {
      const dockerConfig = join(work, 'docker');
      const existingDir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
      let existing = {};
      try {
        existing = JSON.parse(readFileSync(join(existingDir, 'config.json'), 'utf8'));
      } catch {
        // none, or unreadable: start empty
      }
      mkdirSync(dockerConfig, { mode: 0o700 });
      writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify(configWithCredentials(existing, inputs.registry, inputs.username, inputs.password), null, 2), { mode: 0o600 });
      childEnv.DOCKER_CONFIG = dockerConfig;
    }
    const metadataFile = join(work, 'metadata.json');
    const code = await runStowage(inputs.stowage, buildArgs(inputs, metadataFile), childEnv);
    let metadataText = '';
    try {
      metadataText = readFileSync(metadataFile, 'utf8');
    } catch {
      // stowage failed before writing metadata
    }
    if (env.GITHUB_OUTPUT && metadataText !== '') {
      let metadata;
      try {
        metadata = JSON.parse(metadataText);
      } catch {
        throw new ActionError(`stowage wrote metadata that is not JSON (${metadataFile}); this is a bug in stowage`);
      }
      appendFileSync(env.GITHUB_OUTPUT, outputBlock('metadata', JSON.stringify(metadata)) + outputBlock('digests', JSON.stringify(digestsFromMetadata(metadata))));
    }
    return code;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      if (e instanceof ActionError) {
        process.stdout.write(`::error title=stowage::${e.message}\n`);
        process.stderr.write(`stowage action: error: ${e.message}\n`);
        process.exitCode = 1;
      } else {
        process.stderr.write(`stowage action: internal error: ${e && e.message ? e.message : String(e)}\n`);
        process.exitCode = 1;
      }
    },
  );
}
