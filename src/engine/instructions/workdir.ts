/**
 * WORKDIR: sets the config through stage-env, then creates the directory (mkdir -p, 0755) owned by
 * the current USER resolved against the rootfs's passwd/group files with --chown rules (A12). That is a layer unless the path
 * is `/`, even when the directory already existed (BuildKit commits the mkdir either way).
 */
import { chmod, lchown, mkdir } from 'node:fs/promises';
import type { WorkdirInstruction } from '../../dockerfile/types.js';
import { applyMetadataInstruction, type StageState } from '../../dockerfile/stage-env.js';
import type { ImageConfig } from '../../image/types.js';
import { canonicalRoot, resolveInRoot } from '../copy/in-root.js';
import { resolveChown } from '../passwd.js';
import type { StepEnvironment } from './types.js';
import { commitLayer, layerOutcome } from './commit.js';
import type { StepOutcome } from './outcome.js';
import { withLocation } from './located.js';

export async function executeWorkdir(instr: WorkdirInstruction, state: StageState, config: ImageConfig, env: StepEnvironment): Promise<StepOutcome> {
  const meta = applyMetadataInstruction(state, instr, { platform: env.options.platform });
  const dir = meta.configPatch?.WorkingDir ?? config.config?.WorkingDir ?? '/';
  const createdBy = meta.createdBy ?? `WORKDIR ${dir}`;
  if (dir === '/') {
    return { state: meta.state, configPatch: meta.configPatch, history: { createdBy, emptyLayer: true } };
  }
  try {
    // BuildKit creates it with llb.WithUser(USER), i.e. --chown rules: a numeric user alone gives
    // gid = uid (not the passwd entry's gid, nor 0 when there is no entry), a name its primary gid.
    const owner = await resolveChown(env.rootfs.path, config.config?.User || '0');
    await mkdirOwned(env.rootfs.path, dir, owner.uid, owner.gid);
  } catch (e) {
    throw withLocation(e, { file: env.dockerfilePath, range: instr.range });
  }
  const layer = await commitLayer(env);
  return { state: meta.state, configPatch: meta.configPatch, ...layerOutcome(layer, createdBy) };
}

/** `mkdir -p` inside the root; only directories it creates get the owner (like BuildKit's Mkdir). */
async function mkdirOwned(root: string, dir: string, uid: number, gid: number): Promise<void> {
  const canonical = await canonicalRoot(root);
  const parts = dir.split('/').filter((p) => p !== '' && p !== '.');
  let rel = '';
  for (const part of parts) {
    rel = `${rel}/${part}`;
    // Each level is resolved again: a symlink in the rootfs (e.g. /var/run → /run) is followed inside the root.
    const { hostPath } = await resolveInRoot(canonical, rel, { followFinal: true });
    try {
      await mkdir(hostPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    await chmod(hostPath, 0o755); // not subject to the process umask
    await lchown(hostPath, uid, gid);
  }
}
