/**
 * Platform strings `os/arch[/variant]` in a spec: validation against the names Go and the registries
 * use (with a "did you mean"), then the one normalisation every part of stowage applies
 * (image/platform.ts, containerd's rules), so the spec, FROM --platform and the engine agree.
 */
import { normalizePlatform as normalizeImagePlatform } from '../image/platform.js';
import { didYouMean } from '../util/levenshtein.js';

const KNOWN_OS = ['linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'dragonfly', 'solaris', 'illumos', 'aix', 'android', 'ios', 'plan9', 'js', 'wasip1'];
const KNOWN_ARCH = ['amd64', 'arm64', 'arm', '386', 'ppc64le', 'ppc64', 's390x', 'riscv64', 'mips', 'mipsle', 'mips64', 'mips64le', 'loong64', 'wasm'];

export type PlatformResult = { ok: true; platform: string } | { ok: false; message: string; hint?: string };

export function normalizePlatform(text: string): PlatformResult {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    return { ok: false, message: `'${text}' is not a platform`, hint: 'write os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm/v7' };
  }
  const [os, rawArch, rawVariant] = parts as [string, string, string | undefined];
  if (!KNOWN_OS.includes(os)) {
    const guess = didYouMean(os, KNOWN_OS);
    return { ok: false, message: `unknown operating system '${os}' in platform '${text}'`, hint: guess ? `did you mean '${guess}'?` : `known: ${KNOWN_OS.join(', ')}` };
  }
  if (rawVariant !== undefined && !/^v?[0-9]+$/.test(rawVariant)) {
    return { ok: false, message: `invalid variant '${rawVariant}' in platform '${text}'`, hint: 'variants look like v6, v7, v8' };
  }
  const p = normalizeImagePlatform(rawVariant !== undefined ? { os, architecture: rawArch, variant: rawVariant } : { os, architecture: rawArch });
  if (!KNOWN_ARCH.includes(p.architecture)) {
    const guess = didYouMean(rawArch, KNOWN_ARCH);
    return { ok: false, message: `unknown architecture '${rawArch}' in platform '${text}'`, hint: guess ? `did you mean '${guess}'?` : `known: ${KNOWN_ARCH.join(', ')}` };
  }
  if (p.variant !== undefined && !/^v[0-9]+$/.test(p.variant)) {
    return { ok: false, message: `invalid variant '${p.variant}' in platform '${text}'`, hint: 'variants look like v6, v7, v8' };
  }
  return { ok: true, platform: p.variant ? `${os}/${p.architecture}/${p.variant}` : `${os}/${p.architecture}` };
}
