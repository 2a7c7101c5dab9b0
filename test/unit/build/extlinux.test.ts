import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkBootFiles, renderExtlinuxConf, resolveInRoot } from '../../../src/build/extlinux.js';

describe('renderExtlinuxConf', () => {
  it('boots the one entry at once, on the serial port too, with root=UUID and the recipe cmdline', () => {
    expect(
      renderExtlinuxConf({
        kernel: 'boot/vmlinuz',
        initrd: '/boot/initrd.img',
        cmdline: ' console=ttyS0,115200n8   quiet ',
        rootUuid: '3b9e24ed-0a11-4bb6-95f9-d82c9e1f550a',
      }),
    ).toBe(
      [
        '# written by vmenv box build',
        'SERIAL 0 115200',
        'DEFAULT linux',
        'PROMPT 0',
        'TIMEOUT 0',
        '',
        'LABEL linux',
        '  KERNEL /boot/vmlinuz',
        '  INITRD /boot/initrd.img',
        '  APPEND root=UUID=3b9e24ed-0a11-4bb6-95f9-d82c9e1f550a ro console=ttyS0,115200n8 quiet',
        '',
      ].join('\n'),
    );
  });

  it('takes a label and an empty cmdline', () => {
    const text = renderExtlinuxConf({ kernel: 'vmlinuz', initrd: 'initrd.img', cmdline: '', rootUuid: 'u', label: 'tiny' });
    expect(text).toContain('DEFAULT tiny\n');
    expect(text).toContain('LABEL tiny\n  KERNEL /vmlinuz\n  INITRD /initrd.img\n  APPEND root=UUID=u ro\n');
  });
});

describe('resolveInRoot / checkBootFiles', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'vmenv-rootfs-test-'));
    await mkdir(join(root, 'boot'));
    await mkdir(join(root, 'usr', 'lib'), { recursive: true });
    await writeFile(join(root, 'boot', 'vmlinuz-6.1.0-1-amd64'), 'kernel');
    await symlink('vmlinuz-6.1.0-1-amd64', join(root, 'boot', 'vmlinuz')); // relative, as Debian's
    await writeFile(join(root, 'usr', 'lib', 'initrd.img-6.1.0-1-amd64'), 'initrd');
    await symlink('/usr/lib/initrd.img-6.1.0-1-amd64', join(root, 'boot', 'initrd.img')); // absolute: inside the root
    await symlink('../../../../../../etc/hostname', join(root, 'boot', 'escape')); // cannot leave the root
    await symlink('loop2', join(root, 'boot', 'loop1'));
    await symlink('loop1', join(root, 'boot', 'loop2'));
    await symlink('boot', join(root, 'b')); // a linked directory
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('follows relative and absolute links inside the root', async () => {
    expect(await resolveInRoot(root, 'boot/vmlinuz')).toBe(join(root, 'boot', 'vmlinuz-6.1.0-1-amd64'));
    expect(await resolveInRoot(root, 'boot/initrd.img')).toBe(join(root, 'usr', 'lib', 'initrd.img-6.1.0-1-amd64'));
    expect(await resolveInRoot(root, 'b/vmlinuz')).toBe(join(root, 'boot', 'vmlinuz-6.1.0-1-amd64'));
  });

  it('never leaves the root, stops on loops, and wants a file', async () => {
    expect(await resolveInRoot(root, 'boot/escape')).toBeUndefined();
    expect(await resolveInRoot(root, 'boot/loop1')).toBeUndefined();
    expect(await resolveInRoot(root, 'boot')).toBeUndefined();
    expect(await resolveInRoot(root, 'boot/missing')).toBeUndefined();
    expect(await resolveInRoot(root, 'boot/vmlinuz/x')).toBeUndefined();
  });

  it('names each missing boot file and how to provide it', async () => {
    await expect(checkBootFiles(root, { kernel: 'boot/vmlinuz', initrd: 'boot/initrd.img' })).resolves.toBeUndefined();
    await expect(checkBootFiles(root, { kernel: 'vmlinuz', initrd: 'boot/initrd.img' })).rejects.toThrow('The root filesystem has no boot.kernel (/vmlinuz) after the customize hook.');
    const err = (await checkBootFiles(root, { kernel: 'x', initrd: 'y' }).catch((e: unknown) => e)) as Error & { hint?: string };
    expect(err.message).toContain('no boot.kernel (/x) and no boot.initrd (/y)');
    expect(err.hint).toContain('linux-image-amd64');
  });
});
