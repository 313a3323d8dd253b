/** Platform strings `os/arch[/variant]`: validation and normalisation (as containerd normalises them). */
import { didYouMean } from '../util/levenshtein.js';

const KNOWN_OS = ['linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'dragonfly', 'solaris', 'illumos', 'aix', 'android', 'ios', 'plan9', 'js', 'wasip1'];
const KNOWN_ARCH = ['amd64', 'arm64', 'arm', '386', 'ppc64le', 'ppc64', 's390x', 'riscv64', 'mips', 'mipsle', 'mips64', 'mips64le', 'loong64', 'wasm'];
const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', i386: '386', i686: '386', armhf: 'arm/v7', armel: 'arm/v6' };

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
  let arch = rawArch;
  let variant = rawVariant;
  const alias = ARCH_ALIASES[arch];
  if (alias) {
    const [a, v] = alias.split('/');
    arch = a!;
    variant = variant ?? v;
  }
  if (!KNOWN_ARCH.includes(arch)) {
    const guess = didYouMean(arch, KNOWN_ARCH);
    return { ok: false, message: `unknown architecture '${rawArch}' in platform '${text}'`, hint: guess ? `did you mean '${guess}'?` : `known: ${KNOWN_ARCH.join(', ')}` };
  }
  if (variant !== undefined && !/^v[0-9]+$/.test(variant)) {
    return { ok: false, message: `invalid variant '${variant}' in platform '${text}'`, hint: 'variants look like v6, v7, v8' };
  }
  if (arch === 'arm64' && variant === 'v8') variant = undefined;
  if (arch === 'amd64' && variant === 'v1') variant = undefined;
  if (arch === 'arm' && variant === undefined) variant = 'v7';
  return { ok: true, platform: variant ? `${os}/${arch}/${variant}` : `${os}/${arch}` };
}
