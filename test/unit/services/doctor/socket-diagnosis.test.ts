import { describe, expect, it } from 'vitest';
import { diagnoseSocket, type SocketFacts } from '../../../../src/services/doctor/socket-diagnosis.js';

const system: SocketFacts = {
  uri: 'qemu:///system',
  socket: '/run/libvirt/libvirt-sock',
  state: 'ok',
  userDaemon: false,
  explicit: false,
  daemon: 'libvirtd',
  daemonInstalled: true,
  autostart: true,
  systemd: true,
  root: false,
  session: false,
};

describe('diagnoseSocket', () => {
  it('has nothing to say about a socket that answers', () => {
    expect(diagnoseSocket(system)).toBeUndefined();
  });

  it('a missing system socket: the daemon is not running; start it (systemd or not)', () => {
    const d = diagnoseSocket({ ...system, state: 'missing' })!;
    expect(d).toMatchObject({ cause: 'socket-missing', tryConnect: false });
    expect(d.detail).toBe('socket missing: no libvirt socket at /run/libvirt/libvirt-sock — libvirtd is not running');
    expect(d.fix).toBe('sudo systemctl start libvirtd — or use qemu:///session, which needs no system service');
    expect(diagnoseSocket({ ...system, state: 'missing', systemd: false, daemon: 'virtqemud' })!.fix).toMatch(/^sudo virtqemud --daemon/);
    expect(diagnoseSocket({ ...system, state: 'missing', daemon: 'virtqemud' })!.fix).toMatch(/^sudo systemctl start virtqemud.socket virtqemud/);
  });

  it('a missing socket with no daemon installed says what to install', () => {
    const d = diagnoseSocket({ ...system, state: 'missing', daemonInstalled: false })!;
    expect(d.cause).toBe('not-installed');
    expect(d.fix).toMatch(/^sudo apt-get install libvirt-daemon-system/);
  });

  it('root is not sent to qemu:///session, which libvirt serves from the system daemon for root', () => {
    const d = diagnoseSocket({ ...system, state: 'missing', root: true, session: true, uri: 'qemu:///session' })!;
    expect(d.detail).toContain('as root, qemu:///session is served by the system daemon');
    expect(d.fix).toContain('run vmenv as a normal user');
  });

  it('an explicit socket= that is missing names the path and the URI parameter', () => {
    const d = diagnoseSocket({ ...system, state: 'missing', explicit: true, socket: '/run/x/sock' })!;
    expect(d.cause).toBe('socket-missing');
    expect(d.detail).toBe("socket missing: nothing at /run/x/sock (the URI's socket=)");
    expect(d.fix).toContain('correct the socket= path');
  });

  it('a refused socket is a daemon that went down and left it', () => {
    const d = diagnoseSocket({ ...system, state: 'refused' })!;
    expect(d.cause).toBe('daemon-down');
    expect(d.detail).toMatch(/^daemon down: the socket \/run\/libvirt\/libvirt-sock exists but nothing accepts connections/);
    expect(d.fix).toBe('sudo systemctl restart libvirtd');
  });

  it('permission denied names the owner and the group to join', () => {
    const d = diagnoseSocket({ ...system, state: 'denied', owner: { path: '/run/libvirt/libvirt-sock', user: 'root', group: 'libvirt', mode: '0770' } })!;
    expect(d.cause).toBe('permission-denied');
    expect(d.detail).toBe('permission denied: this user may not open /run/libvirt/libvirt-sock; /run/libvirt/libvirt-sock is 0770 root:libvirt');
    expect(d.fix).toMatch(/^sudo usermod -aG libvirt \$USER, then log in again/);
  });

  it('a session daemon that is not running is started by vmenv, unless LIBVIRT_AUTOSTART=0 or it is not installed', () => {
    const session = { ...system, userDaemon: true, session: true, socket: '/run/user/1000/libvirt/libvirt-sock', state: 'missing' as const };
    const d = diagnoseSocket(session)!;
    expect(d).toMatchObject({ cause: 'session-not-started', tryConnect: true });
    expect(d.detail).toContain('vmenv starts it when needed');
    expect(diagnoseSocket({ ...session, state: 'refused' })!.tryConnect).toBe(true);
    const off = diagnoseSocket({ ...session, autostart: false })!;
    expect(off).toMatchObject({ cause: 'session-not-started', tryConnect: false });
    expect(off.fix).toContain('libvirtd --timeout=120 &');
    expect(diagnoseSocket({ ...session, daemonInstalled: false })).toMatchObject({ cause: 'not-installed', tryConnect: false });
  });

  it('any other error is passed on with the socket', () => {
    expect(diagnoseSocket({ ...system, state: 'error', errorText: 'ENOTSOCK' })).toMatchObject({ cause: 'error', detail: 'cannot connect to /run/libvirt/libvirt-sock: ENOTSOCK' });
  });
});
