import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { XattrReader, readXattrs } from '../../src/engine/layer/fs-helper.js';
import { tempDir } from './layer-helpers.js';

function setxattr(path: string, name: string, value: string): void {
  execFileSync('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], sys.argv[3].encode(), follow_symlinks=False)', path, name, value]);
}

describe('XattrReader', () => {
  let t: ReturnType<typeof tempDir>;
  before(() => {
    t = tempDir('xattr-reader');
    mkdirSync(join(t.path, 'd'));
    writeFileSync(join(t.path, 'a'), 'a');
    writeFileSync(join(t.path, 'plain'), 'p');
    setxattr(join(t.path, 'a'), 'user.one', '1');
    setxattr(join(t.path, 'a'), 'user.two', 'zwei');
    setxattr(join(t.path, 'd'), 'user.dir', 'yes');
    symlinkSync('a', join(t.path, 'link'));
  });
  after(() => t.cleanup());

  it('answers request after request from one helper, as the one-shot reader does', async () => {
    const reader = new XattrReader();
    try {
      const paths = ['a', 'd', 'plain', 'link', 'missing'].map((p) => join(t.path, p));
      const once = await readXattrs(paths);
      for (let i = 0; i < 3; i++) {
        const r = await reader.read(paths);
        assert.deepEqual(r, once, `request ${i}`);
      }
      const a = once.xattrs.get(join(t.path, 'a'))!;
      assert.equal(a['user.two']!.toString(), 'zwei');
      assert.equal(once.xattrs.get(join(t.path, 'd'))!['user.dir']!.toString(), 'yes');
      assert.ok(!once.xattrs.has(join(t.path, 'link')), 'a symlink is read itself, not followed');
      assert.deepEqual(once.warnings, []);
      // Concurrent reads queue up and each gets its own answer.
      const [x, y] = await Promise.all([reader.read([join(t.path, 'a')]), reader.read([join(t.path, 'd')])]);
      assert.deepEqual([...x.xattrs.keys()], [join(t.path, 'a')]);
      assert.deepEqual([...y.xattrs.keys()], [join(t.path, 'd')]);
    } finally {
      reader.close();
    }
  });

  it('rejects an aborted read and works again afterwards', async () => {
    const reader = new XattrReader();
    try {
      const ac = new AbortController();
      const pending = reader.read([join(t.path, 'a')], ac.signal);
      ac.abort();
      await assert.rejects(pending, (e: Error) => e.name === 'AbortError');
      const r = await reader.read([join(t.path, 'a')]);
      assert.equal(r.xattrs.get(join(t.path, 'a'))!['user.one']!.toString(), '1');
    } finally {
      reader.close();
    }
  });

  it('does not keep a process alive when its owner never closes it', async () => {
    const script = `import { XattrReader } from ${JSON.stringify(resolve('src/engine/layer/fs-helper.ts'))};
const r = new XattrReader();
r.start();
const got = await r.read([${JSON.stringify(join(t.path, 'a'))}]);
process.stdout.write(String(got.xattrs.size));`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((res) => {
      const timer = setTimeout(() => child.kill(), 20_000);
      child.on('close', (c) => {
        clearTimeout(timer);
        res(c);
      });
    });
    assert.equal(code, 0, 'the process exited by itself');
    assert.equal(out, '1');
  });
});
