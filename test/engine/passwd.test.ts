import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveChown, resolveChownIn, resolveUser, resolveUserIn, type RootfsUserFiles } from '../../src/engine/passwd.js';
import { resolveInRoot } from '../../src/engine/sandbox/in-root.js';
import { StowageError } from '../../src/util/errors.js';

const FILES: RootfsUserFiles = {
  passwd: [
    'root:x:0:0:root:/root:/bin/sh',
    '# a comment',
    'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
    'app:x:1000:1000:App:/home/app:/bin/sh',
    'nohome:x:1001:100::',
    'broken:x:notanumber:0::/:/bin/sh',
  ].join('\n'),
  group: ['root:x:0:', 'users:x:100:', 'app:x:1000:', 'staff:x:50:app,daemon', 'docker:x:999:app', 'empty:x:70:'].join('\n'),
};

describe('resolveUserIn (USER, A13)', () => {
  const table: Array<[string, { uid: number; gid: number; supplementaryGids: number[]; home: string }]> = [
    ['root', { uid: 0, gid: 0, supplementaryGids: [], home: '/root' }],
    ['app', { uid: 1000, gid: 1000, supplementaryGids: [50, 999], home: '/home/app' }],
    ['1000', { uid: 1000, gid: 1000, supplementaryGids: [50, 999], home: '/home/app' }],
    ['app:staff', { uid: 1000, gid: 50, supplementaryGids: [], home: '/home/app' }],
    ['app:70', { uid: 1000, gid: 70, supplementaryGids: [], home: '/home/app' }],
    ['1000:1000', { uid: 1000, gid: 1000, supplementaryGids: [], home: '/home/app' }],
    // A numeric uid without a passwd entry is allowed, gid 0, HOME /.
    ['4242', { uid: 4242, gid: 0, supplementaryGids: [], home: '/' }],
    ['4242:4343', { uid: 4242, gid: 4343, supplementaryGids: [], home: '/' }],
    ['nohome', { uid: 1001, gid: 100, supplementaryGids: [], home: '/' }],
    ['daemon', { uid: 1, gid: 1, supplementaryGids: [50], home: '/usr/sbin' }],
  ];
  for (const [spec, want] of table) {
    it(`${spec}`, () => assert.deepEqual(resolveUserIn(FILES, spec), want));
  }

  it('an unknown user name fails with engine/unknown-user naming /etc/passwd', () => {
    assert.throws(
      () => resolveUserIn(FILES, 'nobody'),
      (e: unknown) => e instanceof StowageError && e.code === 'engine/unknown-user' && /nobody/.test(e.message) && /\/etc\/passwd/.test(e.message),
    );
  });
  it('an unknown group name fails with engine/unknown-group naming /etc/group', () => {
    assert.throws(
      () => resolveUserIn(FILES, 'app:wheel'),
      (e: unknown) => e instanceof StowageError && e.code === 'engine/unknown-group' && /\/etc\/group/.test(e.message),
    );
  });
  it('says the file is missing when the image has no /etc/passwd, but root still works', () => {
    const none: RootfsUserFiles = { passwd: undefined, group: undefined };
    assert.throws(() => resolveUserIn(none, 'app'), (e: unknown) => e instanceof StowageError && /has no \/etc\/passwd/.test(e.message));
    assert.deepEqual(resolveUserIn(none, 'root'), { uid: 0, gid: 0, supplementaryGids: [], home: '/' });
    assert.deepEqual(resolveUserIn(none, '123'), { uid: 123, gid: 0, supplementaryGids: [], home: '/' });
  });
});

describe('resolveChownIn (COPY --chown, A10)', () => {
  const table: Array<[string, { uid: number; gid: number }]> = [
    ['1000', { uid: 1000, gid: 1000 }], // numeric alone: gid = uid
    ['1234', { uid: 1234, gid: 1234 }], // no entry needed
    ['app', { uid: 1000, gid: 1000 }], // name: primary gid
    ['daemon', { uid: 1, gid: 1 }],
    ['app:staff', { uid: 1000, gid: 50 }],
    ['app:7', { uid: 1000, gid: 7 }],
    ['10:20', { uid: 10, gid: 20 }],
    ['root', { uid: 0, gid: 0 }],
    ['root:root', { uid: 0, gid: 0 }],
    ['1000:users', { uid: 1000, gid: 100 }],
  ];
  for (const [spec, want] of table) {
    it(`${spec}`, () => assert.deepEqual(resolveChownIn(FILES, spec), want));
  }
  it('root means 0 even without passwd/group files', () => {
    assert.deepEqual(resolveChownIn({ passwd: undefined, group: undefined }, 'root:root'), { uid: 0, gid: 0 });
  });
  it('unknown names fail (the reference, not BuildKit’s silent 0)', () => {
    assert.throws(() => resolveChownIn(FILES, 'ghost'), (e: unknown) => e instanceof StowageError && e.code === 'engine/unknown-user');
    assert.throws(() => resolveChownIn(FILES, 'app:ghosts'), (e: unknown) => e instanceof StowageError && e.code === 'engine/unknown-group');
  });
});

describe('reading passwd from a rootfs', () => {
  let tmp: string;
  let outside: string;
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'stowage-passwd-'));
    // A "host" passwd outside the rootfs that must never be read.
    outside = path.join(tmp, 'host-etc');
    await mkdir(outside);
    await writeFile(path.join(outside, 'passwd'), 'evil:x:666:666::/evil:/bin/sh\n');
    await writeFile(path.join(outside, 'group'), 'evilgrp:x:667:evil\n');
  });
  after(async () => rm(tmp, { recursive: true, force: true }));

  async function rootfsWith(name: string, setup: (root: string) => Promise<void>): Promise<string> {
    const root = path.join(tmp, name);
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await setup(root);
    return root;
  }

  it('reads the rootfs’s own files', async () => {
    const root = await rootfsWith('plain', async (r) => {
      await writeFile(path.join(r, 'etc/passwd'), 'app:x:1000:1000::/home/app:/bin/sh\n');
      await writeFile(path.join(r, 'etc/group'), 'extra:x:55:app\n');
    });
    assert.deepEqual(await resolveUser(root, 'app'), { uid: 1000, gid: 1000, supplementaryGids: [55], home: '/home/app' });
    assert.deepEqual(await resolveChown(root, 'app:extra'), { uid: 1000, gid: 55 });
  });

  it('an absolute symlink /etc/passwd -> host path is resolved inside the rootfs, not on the host', async () => {
    const root = await rootfsWith('abs-link', async (r) => {
      await symlink(path.join(outside, 'passwd'), path.join(r, 'etc/passwd'));
      await symlink(path.join(outside, 'group'), path.join(r, 'etc/group'));
    });
    await assert.rejects(resolveUser(root, 'evil'), (e: unknown) => e instanceof StowageError && e.code === 'engine/unknown-user');
    await assert.rejects(resolveChown(root, 'root:evilgrp'), (e: unknown) => e instanceof StowageError && e.code === 'engine/unknown-group');
  });

  it('a relative symlink climbing out with ../.. is clamped at the rootfs', async () => {
    const root = await rootfsWith('rel-link', async (r) => {
      const rel = path.relative(path.join(r, 'etc'), path.join(outside, 'passwd'));
      assert.ok(rel.startsWith('..'));
      await symlink(rel, path.join(r, 'etc/passwd'));
    });
    await assert.rejects(resolveUser(root, 'evil'), (e: unknown) => e instanceof StowageError && e.code === 'engine/unknown-user');
  });

  it('a symlinked /etc directory pointing at the host is followed inside the rootfs', async () => {
    const root = path.join(tmp, 'etc-link');
    await mkdir(path.join(root, 'real-etc'), { recursive: true });
    await writeFile(path.join(root, 'real-etc/passwd'), 'inside:x:7:7::/in:/bin/sh\n');
    // /etc -> /real-etc (absolute, as images do): must land in the rootfs's /real-etc.
    await symlink('/real-etc', path.join(root, 'etc'));
    assert.equal((await resolveUser(root, 'inside')).uid, 7);
    const r = await resolveInRoot(root, '/etc/../etc/passwd');
    assert.equal(r.hostPath, path.join(root, 'real-etc/passwd'));
  });

  it('a symlink loop is an error, not a hang', async () => {
    const root = await rootfsWith('loop', async (r) => {
      await symlink('/etc/b', path.join(r, 'etc/a'));
      await symlink('/etc/a', path.join(r, 'etc/b'));
      await symlink('/etc/a', path.join(r, 'etc/passwd'));
    });
    await assert.rejects(resolveUser(root, 'x'), (e: unknown) => e instanceof StowageError && e.code === 'engine/symlink-loop');
  });
});
