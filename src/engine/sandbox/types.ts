/**
 * What the RUN sandbox takes and returns. The stage runner maps `RUN --mount` to `SandboxMount`s
 * (see run-mounts.ts) and the RUN command to an argv (see run-command.ts).
 */

/**
 * - `bwrap`: bubblewrap namespaces (mount, pid, ipc, uts, optionally net); the default.
 * - `chroot`: for running stowage inside an unprivileged container (no unshare, no mount): a plain
 *   chroot plus uid switch, no /proc, no mounts; not a security boundary (see run-step.ts).
 * - `none`: the step runs in the host (= the surrounding container) as-is, whose `/` is the build
 *   root (Kaniko's model, see src/engine/build-root); only when selected.
 */
export type Isolation = 'bwrap' | 'chroot' | 'none';

export type NetworkMode = 'default' | 'none' | 'host';

export interface SandboxUser {
  uid: number;
  gid: number;
  supplementaryGids: number[];
}

export type SandboxMount =
  /** `source` is a host path; writes go to it unless `readonly`. */
  | { kind: 'bind'; source: string; target: string; readonly: boolean }
  | { kind: 'tmpfs'; target: string; sizeBytes?: number }
  /** A read-only file with the given content (secrets, heredoc scripts); never written into the rootfs under bwrap. */
  | { kind: 'file'; content: Buffer | string; target: string; mode: number; uid: number; gid: number };

export interface RunStepOptions {
  /** Host path of the stage's root filesystem; becomes `/` of the step. */
  rootfs: string;
  argv: string[];
  /** `KEY=value` entries; PATH gets Docker's default when absent. */
  env: string[];
  /** Absolute path inside the rootfs; created (root-owned, 0755) when missing, as runc does. */
  cwd: string;
  user: SandboxUser;
  /** Default `buildkitsandbox` (A21). */
  hostname?: string;
  /** `default` = host network, as docker build does; `none` leaves only loopback. */
  network: NetworkMode;
  mounts: SandboxMount[];
  /** Default `bwrap`. */
  isolation?: Isolation;
  signal: AbortSignal;
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
  /** How many trailing output lines to keep for the error message (default 20). */
  tailLines?: number;
  /** Override host tool locations (tests, unusual hosts). */
  tools?: Partial<HostTools>;
  /**
   * `none` isolation only: the engine's build root (the container's `/`). The step runs directly on
   * the host, so `rootfs` must be this directory; any other rootfs is refused (absolute paths the
   * step writes would miss the image).
   */
  buildRoot?: string;
}

export interface RunStepResult {
  exitCode: number;
  /** The last `tailLines` lines of stdout+stderr interleaved as received. */
  outputTail: string[];
}

/** Host binaries the sandbox runs (never binaries of the rootfs). */
export interface HostTools {
  bwrap: string;
  setpriv: string;
  nsenter: string;
  env: string;
  chroot: string;
}

export const DEFAULT_HOSTNAME = 'buildkitsandbox';
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
