/**
 * Shell scripts the build steps run, shared by stowage, Buildah and the plain-bwrap baseline so all
 * three do exactly the same work. busybox has no `split`, and a `dd` per file costs a fork each
 * (20,000 forks ≈ a minute here), so one awk process cuts a base64 stream of random bytes into files:
 * base64 keeps the content incompressible enough (6 bits of entropy per byte) for gzip to cost what
 * it costs on real data.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** gen.sh N BYTES ROOT — N files of about BYTES/N bytes each, 1,000 per directory ROOT/d<k>/f<i>. */
export const GEN_SH = `set -e
N=$1; BYTES=$2; ROOT=$3
D=$(( (N + 999) / 1000 ))
i=0
while [ $i -lt $D ]; do mkdir -p "$ROOT/d$i"; i=$((i + 1)); done
head -c "$BYTES" /dev/urandom | base64 | awk -v n="$N" -v per=$((BYTES / N)) -v root="$ROOT" '
  BEGIN { i = 0; sz = 0; f = root "/d0/f0" }
  { print > f; sz += length($0) + 1
    if (sz >= per) { close(f); i++; if (i >= n) exit; sz = 0; f = sprintf("%s/d%d/f%d", root, int(i / 1000), i) } }'
`;

/**
 * mutate.sh ROOT — the second step of the snapshot pair: delete half the files (the even-numbered
 * ones), modify about 1,000 (the odd ones in d0 and d1), add one.
 */
export const MUTATE_SH = `set -e
ROOT=$1
rm -f "$ROOT"/d*/f*[02468]
for f in "$ROOT"/d0/f*[13579] "$ROOT"/d1/f*[13579]; do echo changed >> "$f"; done
echo added > "$ROOT/added"
`;

export async function writeScripts(dir: string): Promise<void> {
  await writeFile(join(dir, 'gen.sh'), GEN_SH, { mode: 0o755 });
  await writeFile(join(dir, 'mutate.sh'), MUTATE_SH, { mode: 0o755 });
}
