import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDigestMemo } from '../../src/cache/digest-memo.js';
import { openDirContext } from '../../src/engine/context/context.js';

function dirs(t: { after(fn: () => void): void }): { ctx: string; cache: string } {
  const root = mkdtempSync(join(tmpdir(), 'stowage-memo-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'ctx', 'app'), { recursive: true });
  return { ctx: join(root, 'ctx'), cache: join(root, 'cache') };
}

async function digestOf(ctx: string, cache: string, rel = 'app'): Promise<string> {
  const c = await openDirContext({ dir: ctx, cacheDir: cache });
  try {
    return (await c.fileDigests([rel])).get(rel)!;
  } finally {
    await c.close();
  }
}

test('a remembered digest is reused only while the file’s stat is unchanged: content rewritten with the same size and mtime is still seen (ctime)', async (t) => {
  const { ctx, cache } = dirs(t);
  const file = join(ctx, 'app', 'a.txt');
  writeFileSync(file, 'one');
  await sleep(2_100); // past the racy window: the digest is remembered
  const first = await digestOf(ctx, cache);
  assert.equal(readdirSync(join(cache, 'context-digests')).length, 1, 'the memo was written');
  assert.equal(await digestOf(ctx, cache), first, 'unchanged: same digest');
  // Same size, mtime put back: only ctime (which no tool can set) tells the change.
  const before = statSync(file);
  const ref = join(ctx, '..', 'ref');
  writeFileSync(ref, '');
  execFileSync('touch', ['-r', file, ref]); // nanosecond-exact copy of the times (utimes from JS rounds them)
  writeFileSync(file, 'two');
  execFileSync('touch', ['-m', '-r', ref, file]);
  assert.equal(statSync(file).mtimeMs, before.mtimeMs);
  assert.equal(statSync(file).size, before.size);
  const second = await digestOf(ctx, cache);
  assert.notEqual(second, first, 'the new content is hashed, not taken from the memo');
  // The digest is of the content: the same content again gives the first digest.
  writeFileSync(file, 'one');
  assert.equal(await digestOf(ctx, cache), first);
});

test('files changed within the racy window are not remembered; a corrupt or foreign memo is ignored', (t) => {
  const { ctx, cache } = dirs(t);
  const file = join(ctx, 'f');
  writeFileSync(file, 'x');
  const st = statSync(file);
  let clock = Math.max(st.mtimeMs, st.ctimeMs) + 500;
  const memo = openDigestMemo(cache, ctx, () => clock);
  memo.set('f', st, 'aa');
  assert.equal(memo.get('f', st), undefined, 'changed 0.5 s before it was hashed: not trusted');
  clock += 10_000;
  memo.set('f', st, 'bb');
  assert.equal(memo.get('f', st), 'bb');
  assert.equal(memo.get('f', { ...st, ino: st.ino + 1 } as typeof st), undefined, 'another inode (a file replaced by rename)');
  memo.save();
  assert.equal(openDigestMemo(cache, ctx).get('f', st), 'bb', 'read back from disk');
  assert.equal(openDigestMemo(cache, join(ctx, 'other')).get('f', st), undefined, 'another context has its own memo');
  const [name] = readdirSync(join(cache, 'context-digests'));
  writeFileSync(join(cache, 'context-digests', name!), '{"v":1,"dir":');
  assert.equal(openDigestMemo(cache, ctx).get('f', st), undefined, 'corrupt: ignored');
  writeFileSync(join(cache, 'context-digests', name!), JSON.stringify({ v: 99, dir: ctx, entries: { f: [st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs, 'cc'] } }));
  assert.equal(openDigestMemo(cache, ctx).get('f', st), undefined, 'another version: ignored');
});
