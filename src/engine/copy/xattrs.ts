/**
 * Extended attributes, best effort. Node has no xattr API and Debian's `attr` tools are usually
 * absent, so one python3 child per operation does the syscalls in a batch. Without python3 (or
 * where the filesystem refuses a name, e.g. `trusted.*` unprivileged, `user.*` on symlinks) the
 * attributes are silently not copied: files and modes are never affected by this step.
 * Run it after ownership and mode are final: chown clears `security.capability`.
 */
import { spawn } from 'node:child_process';

export type XattrOp =
  /** Copy every attribute of `src` to `dst` (neither followed if a symlink). */
  | { kind: 'copy'; src: string; dst: string }
  /** Set one attribute (from a tar PAX `SCHILY.xattr.<name>` record). */
  | { kind: 'set'; dst: string; name: string; value: Buffer };

const SCRIPT = String.raw`
import os, sys
data = sys.stdin.buffer.read().split(b'\0')
i = 0
n = 0
while i + 2 < len(data):
    kind = data[i]
    if kind == b'c':
        src, dst = data[i+1], data[i+2]; i += 3
        try:
            names = os.listxattr(src, follow_symlinks=False)
        except OSError:
            continue
        for name in names:
            if name == 'security.selinux':
                continue  # the host's label, meaningless (and misleading) in an image
            try:
                os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False); n += 1
            except OSError:
                pass
    elif kind == b's':
        dst, name, val = data[i+1], data[i+2], data[i+3]; i += 4
        try:
            os.setxattr(dst, name.decode(), bytes.fromhex(val.decode()), follow_symlinks=False); n += 1
        except (OSError, ValueError):
            pass
    else:
        break
sys.stdout.write(str(n))
`;

/** Applies the operations; resolves to how many attributes were written (0 without python3). */
export function applyXattrs(ops: readonly XattrOp[], signal: AbortSignal): Promise<number> {
  if (ops.length === 0) return Promise.resolve(0);
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-I', '-S', '-c', SCRIPT], { stdio: ['pipe', 'pipe', 'ignore'], signal });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') resolve(0);
      else if (e.name === 'AbortError') reject(e);
      else resolve(0);
    });
    child.on('close', () => resolve(Number.parseInt(out, 10) || 0));
    child.stdin.on('error', () => {
      /* the child exited early; best effort */
    });
    const parts: Buffer[] = [];
    for (const op of ops) {
      if (op.kind === 'copy') parts.push(Buffer.from(`c\0${op.src}\0${op.dst}\0`));
      else parts.push(Buffer.from(`s\0${op.dst}\0${op.name}\0${op.value.toString('hex')}\0`));
    }
    child.stdin.end(Buffer.concat(parts));
  });
}
