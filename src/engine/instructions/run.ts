/**
 * RUN: the command runs in the sandbox on the stage's rootfs with the image env plus the ARGs in
 * scope, WORKDIR as cwd and USER resolved against the rootfs's own /etc/passwd (A13, A21). Mount
 * points the sandbox created are removed by it before the snapshot, and the mount targets are also
 * excluded from the snapshot, so neither ends up in the layer.
 */
import type { RunInstruction } from '../../dockerfile/types.js';
import { historyFor, resolveRunMounts, runEnvironment, type StageState } from '../../dockerfile/stage-env.js';
import type { ImageConfig } from '../../image/types.js';
import { StowageError } from '../../util/errors.js';
import { resolveUser } from '../passwd.js';
import { runCommandArgv } from '../sandbox/run-command.js';
import { mapRunMounts } from '../sandbox/run-mounts.js';
import type { StepEnvironment } from './types.js';
import { commitLayer, layerOutcome } from './commit.js';
import type { StepOutcome } from './outcome.js';
import { withLocation } from './located.js';

const DEFAULT_SHELL = ['/bin/sh', '-c'];
const OUTPUT_TAIL_LINES = 20;

export async function executeRun(instr: RunInstruction, state: StageState, config: ImageConfig, env: StepEnvironment): Promise<StepOutcome> {
  const { ports, options, rootfs } = env;
  const cc = config.config ?? {};
  const shell = cc.Shell && cc.Shell.length > 0 ? cc.Shell : DEFAULT_SHELL;
  const cwd = cc.WorkingDir || '/';
  const where = { file: env.dockerfilePath, range: instr.range };
  if (instr.security === 'insecure') {
    throw new StowageError('build/insecure-not-allowed', 'RUN --security=insecure needs the security.insecure entitlement, which stowage does not grant', {
      ...where,
      hint: 'remove --security=insecure; privileged steps are not supported',
    });
  }

  let user;
  try {
    user = await resolveUser(rootfs.path, cc.User || '0');
  } catch (e) {
    throw withLocation(e, where);
  }
  const command = runCommandArgv({ command: instr.command, heredocs: instr.heredocs }, shell);
  const processEnv: string[] = [...runEnvironment(state)];
  // runc sets HOME from the passwd entry when the image env has none (A13).
  if (!processEnv.some((kv) => kv.startsWith('HOME='))) processEnv.push(`HOME=${user.home || '/'}`);

  let mounts;
  try {
    mounts = await mapRunMounts(resolveRunMounts(instr, state), {
      rootfs: rootfs.path,
      workdir: cwd,
      contextDir: ports.context.dir,
      contextIgnore: ports.context.ignore,
      stageRootfs: (ref: string) => stageRootfsFor(ref, env),
      cacheDir: options.cacheDir,
      secrets: options.secrets ?? (async () => undefined),
      signal: options.signal,
    });
  } catch (e) {
    throw withLocation(e, where);
  }
  const allMounts = [...command.mounts, ...mounts.mounts];
  processEnv.push(...mounts.env);
  const network = instr.network && instr.network !== 'default' ? instr.network : options.network;
  let res;
  try {
    res = await ports.sandbox.runStep({
    rootfs: rootfs.path,
    argv: command.argv,
    env: processEnv,
    cwd,
    user: { uid: user.uid, gid: user.gid, supplementaryGids: user.supplementaryGids },
    network,
    // BuildKit's default hostname, overridable with the BUILDKIT_SANDBOX_HOSTNAME build arg (A7).
    hostname: options.buildArgs['BUILDKIT_SANDBOX_HOSTNAME'] || 'buildkitsandbox',
    mounts: allMounts,
    signal: options.signal,
    tailLines: OUTPUT_TAIL_LINES,
    onOutput: (chunk, stream) => options.onEvent?.({ type: 'output', stage: env.stageIndex, line: instr.range.start.line, chunk, stream }),
    });
  } catch (e) {
    throw withLocation(e, where);
  } finally {
    await mounts.release();
  }
  if (res.exitCode !== 0) {
    const shown = command.argv.join(' ');
    const tail = res.outputTail.length > 0 ? `\nlast output:\n${res.outputTail.map((l) => `  ${l}`).join('\n')}` : '\n(the command printed nothing)';
    throw new StowageError('build/run-failed', `RUN ${shown} failed with exit code ${res.exitCode}${tail}`, {
      ...where,
      hint: 'fix the command (the output above is its last lines); nothing was written to any destination',
    });
  }
  const layer = await commitLayer(env, { ignore: allMounts.map((m) => m.target) });
  return { state, ...layerOutcome(layer, historyFor(instr, state)) };
}

function stageRootfsFor(ref: string, env: StepEnvironment): Promise<string> {
  const idx = /^\d+$/.test(ref) ? Number(ref) : undefined;
  for (const [i, r] of env.ports.stageResults) {
    if ((idx !== undefined && i === idx) || r.name === ref.toLowerCase()) {
      if (r.rootfsDir) return Promise.resolve(r.rootfsDir);
      if (r.ensureRootfs) return r.ensureRootfs(env.options.signal);
    }
  }
  return env.ports.imageRootfs(ref, env.options.signal);
}
