import { describe, expect, it } from 'vitest';
import { LibvirtUriError } from '../../src/libvirt/errors.js';
import {
  formatLibvirtUri,
  parseLibvirtUri,
  remoteOpenName,
  remoteSocketFor,
  resolveUri,
  sshHelperUri,
  unixSocketFor,
  userRuntimeDir,
  usesUserDaemon,
  type LibvirtUri,
  type SocketEnv,
} from '../../src/libvirt/uri.js';

type Expect = Partial<Omit<LibvirtUri, 'query' | 'raw'>> & { open: string };

const valid: Array<[string, Expect]> = [
  [
    'qemu:///system',
    {
      driver: 'qemu',
      transport: 'unix',
      path: '/system',
      instance: 'system',
      params: {},
      user: undefined,
      host: undefined,
      port: undefined,
      open: 'qemu:///system',
    },
  ],
  ['qemu:///session', { driver: 'qemu', transport: 'unix', instance: 'session', open: 'qemu:///session' }],
  [
    'qemu:///system?socket=/run/x/libvirt-sock',
    { transport: 'unix', params: { socket: '/run/x/libvirt-sock' }, open: 'qemu:///system' },
  ],
  [
    'qemu+unix:///system?socket=/tmp/s',
    { scheme: 'qemu+unix', transport: 'unix', params: { socket: '/tmp/s' }, open: 'qemu:///system' },
  ],
  [
    'qemu+ssh://root@127.0.0.1:22022/system?keyfile=/k/id&socket=/run/s&no_verify=1&known_hosts=/kh&mode=legacy&netcat=/bin/nc',
    {
      driver: 'qemu',
      transport: 'ssh',
      user: 'root',
      host: '127.0.0.1',
      port: 22022,
      instance: 'system',
      params: { keyfile: '/k/id', socket: '/run/s', no_verify: '1', known_hosts: '/kh', mode: 'legacy', netcat: '/bin/nc' },
      open: 'qemu:///system',
    },
  ],
  ['qemu+ssh://host/system?keyfile=x', { transport: 'ssh', host: 'host', open: 'qemu:///system' }],
  ['qemu+ssh://alice@h.example.com/session', { user: 'alice', host: 'h.example.com', instance: 'session', open: 'qemu:///session' }],
  ['QEMU+SSH://h/system', { scheme: 'qemu+ssh', driver: 'qemu', transport: 'ssh', open: 'qemu:///system' }],
  ['qemu+libssh2://h/system', { transport: 'ssh', open: 'qemu:///system' }],
  ['qemu+tcp://127.0.0.1/system', { transport: 'tcp', host: '127.0.0.1', port: undefined, user: undefined, open: 'qemu:///system' }],
  ['qemu+tcp://127.0.0.1:16509/system', { transport: 'tcp', port: 16509, open: 'qemu:///system' }],
  ['qemu+tls://h/system', { transport: 'tls', host: 'h', open: 'qemu:///system' }],
  ['qemu://h/system', { transport: 'tls', host: 'h', open: 'qemu:///system' }],
  ['qemu+ssh://[::1]:2222/system', { host: '::1', port: 2222, open: 'qemu:///system' }],
  ['qemu+tcp://[fe80::1%25eth0]/system', { host: 'fe80::1%eth0', open: 'qemu:///system' }],
  ['test:///default', { driver: 'test', transport: 'unix', instance: 'default', open: 'test:///default' }],
  // Parameters the daemon side reads are passed through; client ones are stripped.
  [
    'qemu+ssh://h/system?keyfile=k&foo=bar%20baz&KeyFile=k2',
    { params: { keyfile: 'k2', foo: 'bar baz' }, open: 'qemu:///system?foo=bar%20baz' },
  ],
  [
    'qemu+ssh://h/system?command=x&proxy=netcat&pkipath=p&tls_priority=t&sshauth=agent&no_tty=1&known_hosts_verify=auto&authfile=a&auth=sasl',
    { open: 'qemu:///system' },
  ],
  ['qemu+ssh://h/system?name=qemu:///session', { open: 'qemu:///session' }],
  ['remote+ssh://h/', { driver: 'remote', open: '' }],
  // libvirt splits on ';' too and ignores empty and "=value" sections.
  ['qemu:///system?socket=/a;mode=direct&&=x', { params: { socket: '/a', mode: 'direct' }, open: 'qemu:///system' }],
  ['  qemu:///system\n', { instance: 'system', open: 'qemu:///system' }],
  ['qemu+ssh://h/system?mode=LEGACY', { params: { mode: 'legacy' }, open: 'qemu:///system' }],
];

describe('parseLibvirtUri', () => {
  it.each(valid)('%s', (text, want) => {
    const u = parseLibvirtUri(text);
    const { open, ...fields } = want;
    for (const [k, v] of Object.entries(fields)) {
      expect(u[k as keyof LibvirtUri], k).toEqual(v);
    }
    expect(remoteOpenName(u)).toBe(open);
  });

  it.each(valid)('formats %s so that it parses back the same', (text) => {
    const u = parseLibvirtUri(text);
    const again = parseLibvirtUri(formatLibvirtUri(u));
    expect({ ...again, raw: '' }).toEqual({ ...u, raw: '' });
  });

  it('formats for display', () => {
    expect(formatLibvirtUri(parseLibvirtUri('qemu+ssh://root@[::1]:22/system?keyfile=/a b'.replace(' ', '%20')))).toBe(
      'qemu+ssh://root@[::1]:22/system?keyfile=/a%20b',
    );
  });

  const invalid: Array<[string, RegExp]> = [
    ['', /empty/],
    ['system', /no scheme/],
    ['qemu:/system', /expected "\/\/"/],
    ['qemu+foo://h/system', /unknown transport "\+foo"/],
    ['qemu+unix://host/system', /unix transport reaches only this machine/],
    ['qemu+ext:///system', /"ext" transport/],
    ['qemu+ssh://h:abc/system', /port "abc" is not a number/],
    ['qemu+ssh://h:70000/system', /out of range/],
    ['qemu+ssh://h:0/system', /out of range/],
    ['qemu+ssh://user:pw@h/system', /password/],
    ['qemu+ssh://h', /names no instance/],
    ['qemu+ssh://h/', /names no instance/],
    ['qemu:///bogus', /no instance "\/bogus"/],
    ['qemu:///system?mode=sideways', /mode=sideways is not one of auto, legacy, direct/],
    ['qemu+ssh://h/system?no_verify=yes', /no_verify=yes must be a number/],
    ['qemu+tcp://h/system?socket=/x', /socket= makes no sense/],
    ['qemu:///system?socket=', /socket= is empty/],
    ['qemu+ssh://[::1/system', /not closed/],
    ['qemu+ssh://h%zz/system', /bad %-escape/],
    ['qemu+ssh://h/system?proxy=native&netcat=nc', /netcat= cannot be used with proxy=native/],
    ['qemu:///system?netcat=nc', /only applies to the ssh transport/],
    ['qemu+ssh://:22/system', /no host/],
    ['qemu+ssh://h a/system', /whitespace/],
  ];
  it.each(invalid)('rejects %j', (text, why) => {
    let err: unknown;
    try {
      parseLibvirtUri(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LibvirtUriError);
    expect((err as Error).message).toMatch(why);
  });
});

describe('sshHelperUri', () => {
  it('keeps mode and socket, which virt-ssh-helper reads, and drops the rest', () => {
    const u = parseLibvirtUri('qemu+ssh://h/system?keyfile=k&mode=direct&no_verify=1&socket=/s');
    expect(sshHelperUri(u)).toBe('qemu:///system?mode=direct&socket=/s');
    expect(remoteOpenName(u)).toBe('qemu:///system');
  });
});

describe('socket paths', () => {
  const base = (over: Partial<SocketEnv> = {}): SocketEnv => ({
    uid: 1000,
    env: {},
    home: '/home/u',
    exists: () => false,
    haveDaemon: () => false,
    ...over,
  });

  it('uses libvirt\'s per-user runtime directory rule', () => {
    expect(userRuntimeDir({ env: { XDG_RUNTIME_DIR: '/run/user/1000' }, home: '/home/u' })).toBe('/run/user/1000/libvirt');
    expect(userRuntimeDir({ env: {}, home: '/home/u' })).toBe('/home/u/.cache/libvirt');
    expect(userRuntimeDir({ env: { XDG_CACHE_HOME: '/c' }, home: '/home/u' })).toBe('/c/libvirt');
    expect(userRuntimeDir({ env: { XDG_RUNTIME_DIR: '' }, home: '/home/u' })).toBe('/home/u/.cache/libvirt');
    expect(userRuntimeDir({ env: { XDG_RUNTIME_DIR: '/x' }, home: '/h', runtimeDir: '/rt' })).toBe('/rt/libvirt');
  });

  it('system: /run/libvirt/libvirt-sock, or ?socket=', () => {
    expect(unixSocketFor(parseLibvirtUri('qemu:///system'), base()).path).toBe('/run/libvirt/libvirt-sock');
    const c = unixSocketFor(parseLibvirtUri('qemu:///system?socket=/run/vmenv-test/libvirt/libvirt-sock'), base());
    expect(c).toMatchObject({ path: '/run/vmenv-test/libvirt/libvirt-sock', explicit: true, daemon: 'libvirtd' });
  });

  it('session for a normal user: the runtime dir, legacy unless the modular daemon is there', () => {
    const s = parseLibvirtUri('qemu:///session');
    const env = { XDG_RUNTIME_DIR: '/run/user/1000' };
    expect(unixSocketFor(s, base({ env }))).toMatchObject({
      path: '/run/user/1000/libvirt/libvirt-sock',
      daemon: 'libvirtd',
      user: true,
    });
    expect(unixSocketFor(s, base({ env, haveDaemon: (n) => n === 'virtqemud' }))).toMatchObject({
      path: '/run/user/1000/libvirt/virtqemud-sock',
      daemon: 'virtqemud',
      mode: 'direct',
    });
    // An existing socket wins over what is installed.
    expect(
      unixSocketFor(s, base({ env, haveDaemon: () => true, exists: (p) => p.endsWith('/libvirt-sock') })).path,
    ).toBe('/run/user/1000/libvirt/libvirt-sock');
    expect(unixSocketFor(parseLibvirtUri('qemu:///session?mode=direct'), base({ env })).path).toBe(
      '/run/user/1000/libvirt/virtqemud-sock',
    );
    expect(unixSocketFor(s, base()).path).toBe('/home/u/.cache/libvirt/libvirt-sock');
  });

  it('session for root is the system daemon, as in libvirt', () => {
    const s = parseLibvirtUri('qemu:///session');
    expect(usesUserDaemon(s, 0)).toBe(false);
    expect(usesUserDaemon(s, 1000)).toBe(true);
    expect(unixSocketFor(s, base({ uid: 0, env: { XDG_RUNTIME_DIR: '/run/user/0' } }))).toMatchObject({
      path: '/run/libvirt/libvirt-sock',
      user: false,
    });
  });

  it('remote socket for netcat over ssh', () => {
    expect(remoteSocketFor(parseLibvirtUri('qemu+ssh://h/system'))).toBe('/var/run/libvirt/libvirt-sock');
    expect(remoteSocketFor(parseLibvirtUri('qemu+ssh://h/system?mode=direct'))).toBe('/var/run/libvirt/virtqemud-sock');
    expect(remoteSocketFor(parseLibvirtUri('qemu+ssh://h/system?socket=/s'))).toBe('/s');
  });
});

describe('resolveUri', () => {
  const noSocket = async (): Promise<boolean> => false;
  const probes: string[] = [];
  const systemUp = async (p: string): Promise<boolean> => {
    probes.push(p);
    return p === '/run/libvirt/libvirt-sock';
  };

  it('configured wins over everything', async () => {
    const r = await resolveUri({
      configured: 'qemu+ssh://h/system',
      env: { VMENV_LIBVIRT_URI: 'qemu:///session', LIBVIRT_DEFAULT_URI: 'qemu:///session' },
      probe: systemUp,
    });
    expect(r.source).toBe('config');
    expect(r.uri.host).toBe('h');
  });

  it('then VMENV_LIBVIRT_URI, then LIBVIRT_DEFAULT_URI', async () => {
    const both = { VMENV_LIBVIRT_URI: 'qemu+tcp://127.0.0.1/system', LIBVIRT_DEFAULT_URI: 'qemu:///session' };
    expect((await resolveUri({ env: both, probe: systemUp })).source).toBe('VMENV_LIBVIRT_URI');
    const r = await resolveUri({ env: { LIBVIRT_DEFAULT_URI: 'qemu:///session' }, probe: systemUp });
    expect(r).toMatchObject({ source: 'LIBVIRT_DEFAULT_URI', reason: 'set by $LIBVIRT_DEFAULT_URI' });
    expect(r.uri.instance).toBe('session');
  });

  it('skips empty settings', async () => {
    const r = await resolveUri({ configured: ' ', env: { VMENV_LIBVIRT_URI: '', LIBVIRT_DEFAULT_URI: '' }, probe: noSocket });
    expect(r.source).toBe('session-default');
  });

  it('reports a bad URI from the environment, naming the variable', async () => {
    await expect(resolveUri({ env: { VMENV_LIBVIRT_URI: 'nonsense' }, probe: noSocket })).rejects.toThrow(
      /\$VMENV_LIBVIRT_URI/,
    );
  });

  it('then qemu:///system when a system daemon answers', async () => {
    probes.length = 0;
    const r = await resolveUri({ env: {}, probe: systemUp });
    expect(r.source).toBe('system-socket');
    expect(formatLibvirtUri(r.uri)).toBe('qemu:///system');
    expect(r.reason).toContain('/run/libvirt/libvirt-sock');
    expect(probes).toEqual(['/run/libvirt/virtqemud-sock', '/run/libvirt/libvirt-sock']);
  });

  it('else qemu:///session', async () => {
    const r = await resolveUri({ env: {}, probe: noSocket });
    expect(r.source).toBe('session-default');
    expect(formatLibvirtUri(r.uri)).toBe('qemu:///session');
  });

  it('reports the socket a local URI uses', async () => {
    const user = await resolveUri({
      env: { XDG_RUNTIME_DIR: '/run/user/1000' },
      uid: 1000,
      probe: noSocket,
      exists: () => false,
      haveDaemon: () => false,
    });
    expect(user.socket).toBe('/run/user/1000/libvirt/libvirt-sock');
    const root = await resolveUri({ env: {}, uid: 0, home: '/root', probe: noSocket, exists: () => false, haveDaemon: () => false });
    expect(root.socket).toBe('/run/libvirt/libvirt-sock');
    const sys = await resolveUri({ env: {}, uid: 1000, home: '/h', runtimeDir: '/rt', probe: systemUp, exists: () => false });
    expect(sys.socket).toBe('/run/libvirt/libvirt-sock');
    const remote = await resolveUri({ configured: 'qemu+ssh://h/system', probe: noSocket });
    expect(remote.socket).toBeUndefined();
  });

  it('probes the real system socket by default without throwing', async () => {
    const r = await resolveUri({ env: {}, systemSockets: ['/nonexistent/vmenv-test/libvirt-sock'] });
    expect(r.source).toBe('session-default');
  });
});

describe('isSessionUri and isLocalUri', () => {
  it('tell a session instance and a daemon on this host', async () => {
    const { isLocalUri, isSessionUri } = await import('../../src/libvirt/uri.js');
    expect(isSessionUri('qemu:///session')).toBe(true);
    expect(isSessionUri('qemu:///system?socket=/run/x/libvirt-sock')).toBe(false);
    expect(isSessionUri('not a uri')).toBe(false);
    expect(isLocalUri('qemu:///system')).toBe(true);
    expect(isLocalUri('qemu+unix:///session')).toBe(true);
    expect(isLocalUri('qemu+ssh://me@far/system')).toBe(false);
    expect(isLocalUri('qemu+tcp://127.0.0.1/system')).toBe(false);
    expect(isLocalUri('not a uri')).toBe(false);
  });
});
