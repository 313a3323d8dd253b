import { StowageError } from '../util/errors.js';
import type { Descriptor, ImageConfig, ImageIndex, Platform } from './types.js';

/**
 * Platform naming follows containerd's `platforms.Normalize`: architecture aliases are folded
 * (x86_64 → amd64, aarch64 → arm64), `arm64/v8` is plain `arm64`, bare `arm` is `arm/v7`.
 */
export function normalizePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase() || undefined;
  switch (architecture) {
    case 'i386':
    case 'i686':
      architecture = '386';
      variant = undefined;
      break;
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64';
      if (variant === 'v1') variant = undefined;
      break;
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64';
      if (variant === 'v8' || variant === '8') variant = undefined;
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
    case 'arm':
      if (variant === undefined || variant === '7') variant = 'v7';
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`;
      break;
    default:
      break;
  }
  const out: Platform = { architecture, os };
  if (variant !== undefined) out.variant = variant;
  if (p['os.version'] !== undefined) out['os.version'] = p['os.version'];
  if (p['os.features'] !== undefined) out['os.features'] = [...p['os.features']];
  return out;
}

/** `linux/arm64`, `linux/arm/v7`, `linux` (architecture then defaults to `defaultArch`). */
export function parsePlatform(s: string, options: { defaultArch?: string } = {}): Platform {
  const parts = s.trim().split('/');
  const valid = /^[A-Za-z0-9_.-]+$/;
  if (parts.length < 1 || parts.length > 3 || parts.some((x) => !valid.test(x))) {
    throw new StowageError('image/invalid-platform', `invalid platform ${JSON.stringify(s)}`, {
      hint: 'write a platform as os/arch[/variant], e.g. linux/amd64 or linux/arm/v7',
    });
  }
  const [os, arch, variant] = parts as [string, string | undefined, string | undefined];
  const architecture = arch ?? options.defaultArch;
  if (architecture === undefined) {
    throw new StowageError('image/invalid-platform', `platform ${JSON.stringify(s)} has no architecture`, {
      hint: 'write a platform as os/arch[/variant], e.g. linux/amd64',
    });
  }
  return normalizePlatform(variant === undefined ? { os, architecture } : { os, architecture, variant });
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== '').join('/');
}

/** The platform a config declares. */
export function configPlatform(config: Pick<ImageConfig, 'os' | 'architecture' | 'variant' | 'os.version'>): Platform {
  const p: Platform = { os: config.os, architecture: config.architecture };
  if (config.variant) p.variant = config.variant;
  if (config['os.version']) p['os.version'] = config['os.version'];
  return p;
}

/**
 * Whether an image for `have` satisfies a request for `want`: same OS and architecture, and the
 * same variant when both name one (after normalisation). A missing variant on either side matches.
 */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  if (w.variant !== undefined && h.variant !== undefined && w.variant !== h.variant) return false;
  return true;
}

/** BuildKit marks attestation manifests in an index with unknown/unknown and a reference-type annotation. */
export function isAttestation(d: Descriptor): boolean {
  if (d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') return true;
  return d.platform?.os === 'unknown' && d.platform.architecture === 'unknown';
}

/**
 * The index entry for `platform`, or undefined. Exact variant matches win over entries that leave the
 * variant open; attestation entries are skipped. An index with a single platform-less image entry
 * (some tools write these) yields that entry.
 */
export function matchPlatform(index: Pick<ImageIndex, 'manifests'>, platform: Platform): Descriptor | undefined {
  const want = normalizePlatform(platform);
  const candidates = index.manifests.filter((d) => !isAttestation(d));
  let loose: Descriptor | undefined;
  for (const d of candidates) {
    if (d.platform === undefined || !platformMatches(want, d.platform)) continue;
    const have = normalizePlatform(d.platform);
    if (have.variant === want.variant) return d;
    loose ??= d;
  }
  if (loose !== undefined) return loose;
  if (candidates.length === 1 && candidates[0]!.platform === undefined) return candidates[0];
  return undefined;
}

/** Like `matchPlatform`, but a missing platform is a `StowageError` listing what the index offers. */
export function selectPlatform(index: Pick<ImageIndex, 'manifests'>, platform: Platform, what = 'image'): Descriptor {
  const found = matchPlatform(index, platform);
  if (found !== undefined) return found;
  const offered = index.manifests
    .filter((d) => !isAttestation(d) && d.platform !== undefined)
    .map((d) => formatPlatform(d.platform!));
  throw new StowageError('image/platform-not-found', `${what} has no variant for platform ${formatPlatform(platform)}`, {
    hint: offered.length > 0 ? `available platforms: ${[...new Set(offered)].join(', ')}` : 'the index lists no platforms',
  });
}

const NODE_ARCH: Readonly<Record<string, Platform['architecture']>> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le', // Node on Linux/POWER is little-endian
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips64el: 'mips64le',
  mipsel: 'mipsle',
};

/**
 * The platform of images this host runs natively. Container images are Linux images everywhere
 * except Windows hosts (as Docker Desktop does on macOS).
 */
export function hostPlatform(node: { arch: string; platform: string } = process): Platform {
  const architecture = NODE_ARCH[node.arch] ?? node.arch;
  const os = node.platform === 'win32' ? 'windows' : 'linux';
  return normalizePlatform({ os, architecture });
}
