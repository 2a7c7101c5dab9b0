import { describe, expect, it } from 'vitest';
import {
  allows,
  firstAccessProblem,
  identityFrom,
  modeString,
  parseDacBaselabel,
  parseGroup,
  parsePasswd,
  pathComponents,
  type Identity,
  type PathEntry,
} from '../../../src/hosts/qemu-user.js';

const caps = `<capabilities><host>
    <secmodel>
      <model>none</model>
      <doi>0</doi>
    </secmodel>
    <secmodel>
      <model>dac</model>
      <doi>0</doi>
      <baselabel type='kvm'>+64055:+108</baselabel>
      <baselabel type='qemu'>+64055:+64055</baselabel>
    </secmodel>
</host></capabilities>`;

const passwd = 'root:x:0:0:root:/root:/bin/bash\nlibvirt-qemu:x:64055:107:Libvirt Qemu,,,:/var/lib/libvirt:/usr/sbin/nologin\nbroken line\n';
const group = 'root:x:0:\nkvm:x:107:libvirt-qemu\nlibvirt:x:108:alice\nlibvirt-qemu:x:64055:libvirt-qemu\n';

const qemu: Identity = { name: 'libvirt-qemu', uid: 64055, gid: 64055, groups: [64055, 107] };
const dir = (path: string, mode: number, uid = 0, gid = 0): PathEntry => ({ path, mode, uid, gid, isDir: true });

describe("QEMU's user", () => {
  it("reads the DAC base label for the domain type from libvirt's capabilities", () => {
    expect(parseDacBaselabel(caps, 'qemu')).toEqual({ uid: 64055, gid: 64055 });
    expect(parseDacBaselabel(caps, 'kvm')).toEqual({ uid: 64055, gid: 108 });
    expect(parseDacBaselabel(caps, 'xen')).toEqual({ uid: 64055, gid: 108 }); // the first label
    expect(parseDacBaselabel('<capabilities><host><secmodel><model>none</model></secmodel></host></capabilities>', 'qemu')).toBeUndefined();
  });

  it('names the uid and collects its groups as getgrouplist does', () => {
    expect(parsePasswd(passwd)).toEqual([
      { name: 'root', uid: 0, gid: 0 },
      { name: 'libvirt-qemu', uid: 64055, gid: 107 },
    ]);
    expect(parseGroup(group)[1]).toEqual({ name: 'kvm', gid: 107, members: ['libvirt-qemu'] });
    expect(identityFrom(64055, 64055, parsePasswd(passwd), parseGroup(group))).toEqual(qemu);
    expect(identityFrom(4242, 4242, [], [])).toEqual({ name: '4242', uid: 4242, gid: 4242, groups: [4242] });
  });
});

describe('permissions', () => {
  it('uses the first class that matches: owner, then group, then other', () => {
    expect(allows({ mode: 0o700, uid: 64055, gid: 0 }, qemu, 'x')).toBe(true);
    // The owner bits deny the owner even where "other" would allow.
    expect(allows({ mode: 0o077, uid: 64055, gid: 0 }, qemu, 'x')).toBe(false);
    expect(allows({ mode: 0o710, uid: 0, gid: 107 }, qemu, 'x')).toBe(true);
    expect(allows({ mode: 0o701, uid: 0, gid: 107 }, qemu, 'x')).toBe(false);
    expect(allows({ mode: 0o711, uid: 0, gid: 0 }, qemu, 'x')).toBe(true);
    expect(allows({ mode: 0o711, uid: 0, gid: 0 }, qemu, 'w')).toBe(false);
    expect(allows({ mode: 0o000, uid: 5, gid: 5 }, { name: 'root', uid: 0, gid: 0, groups: [0] }, 'w')).toBe(true);
  });

  it('finds the first folder QEMU cannot search, and the last it cannot write when it must', () => {
    const path = [dir('/', 0o755), dir('/root', 0o700), dir('/root/pools', 0o755)];
    expect(firstAccessProblem(path, qemu, false)).toEqual({ path: '/root', need: 'search', mode: 'drwx------', uid: 0, gid: 0 });
    const open = [dir('/', 0o755), dir('/var', 0o755), dir('/var/lib/images', 0o711)];
    expect(firstAccessProblem(open, qemu, false)).toBeUndefined();
    expect(firstAccessProblem(open, qemu, true)).toMatchObject({ path: '/var/lib/images', need: 'write' });
    expect(firstAccessProblem([dir('/', 0o755), { ...dir('/f', 0o755), isDir: false }], qemu, false)).toMatchObject({ path: '/f', need: 'search', mode: '-rwxr-xr-x' });
  });

  it('spells modes and splits paths', () => {
    expect(modeString(0o750)).toBe('drwxr-x---');
    expect(modeString(0o644, false)).toBe('-rw-r--r--');
    expect(pathComponents('/var/lib/../lib/libvirt/')).toEqual(['/', '/var', '/var/lib', '/var/lib/libvirt']);
    expect(pathComponents('/')).toEqual(['/']);
  });
});
