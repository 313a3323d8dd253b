import { createHash } from 'node:crypto';
import { StowageError } from '../util/errors.js';

/** `sha256:<64 hex>`; identities are digests everywhere. */
export type Digest = string & { readonly __brand: 'Digest' };

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

export function parseDigest(s: string): Digest {
  if (!isDigest(s)) {
    throw new StowageError('image/invalid-digest', `invalid digest ${JSON.stringify(s)}`, {
      hint: 'digests look like sha256:<64 lowercase hex characters>',
    });
  }
  return s;
}

export function sha256Digest(data: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

export function digestHex(d: Digest): string {
  return d.slice('sha256:'.length);
}
