import { sha256Digest, type Digest } from './digest.js';

/**
 * Canonical JSON: object keys sorted (by UTF-16 code units, as RFC 8785 does), no whitespace,
 * `undefined` object members omitted. The same value always yields the same bytes, so digests of
 * configs and manifests built from equal data are equal across runs and machines.
 */
export function canonicalJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(canonicalJsonString(value));
}

export function canonicalJsonString(value: unknown): string {
  const parts: string[] = [];
  write(value, parts, '$');
  return parts.join('');
}

function write(value: unknown, out: string[], path: string): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      out.push(JSON.stringify(value));
      return;
    case 'number':
      // NaN/Infinity would become `null` in JSON.stringify and silently change meaning.
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: non-finite number at ${path}`);
      out.push(JSON.stringify(value));
      return;
    case 'object': {
      if (value === null) {
        out.push('null');
        return;
      }
      if (Array.isArray(value)) {
        out.push('[');
        value.forEach((item, i) => {
          if (i > 0) out.push(',');
          if (item === undefined) throw new TypeError(`canonicalJson: undefined array element at ${path}[${i}]`);
          write(item, out, `${path}[${i}]`);
        });
        out.push(']');
        return;
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      out.push('{');
      keys.forEach((k, i) => {
        if (i > 0) out.push(',');
        out.push(JSON.stringify(k), ':');
        write(obj[k], out, `${path}.${k}`);
      });
      out.push('}');
      return;
    }
    default:
      throw new TypeError(`canonicalJson: cannot serialise a ${typeof value} at ${path}`);
  }
}

export interface Serialized {
  bytes: Uint8Array;
  digest: Digest;
  size: number;
}

/** Canonical bytes of `value` with their digest and size, ready to become a descriptor. */
export function serialize(value: unknown): Serialized {
  const bytes = canonicalJson(value);
  return { bytes, digest: sha256Digest(bytes), size: bytes.byteLength };
}
