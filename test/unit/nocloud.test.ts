// The guest-side NoCloud seed handler (boxes/common/nocloud/vmenv-nocloud), a POSIX sh +
// awk script, run under /bin/sh with the host's tools and under `busybox sh` with
// nothing but busybox applets on PATH (as in the tiny box).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { renderSeed } from '../../src/lifecycle/seed.js';

const dir = resolve(__dirname, '../../boxes/common/nocloud');
const script = join(dir, 'vmenv-nocloud');
const runSh = join(dir, 'test/run.sh');
const tmp = mkdtempSync(join(tmpdir(), 'vmenv-nocloud-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function findBusybox(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}
const busybox = findBusybox();

/** A PATH holding only busybox applets, so the script cannot reach the host's tools. */
function busyboxBin(): string {
  const bin = join(tmp, 'bb');
  mkdirSync(bin, { recursive: true });
  for (const applet of execFileSync(busybox!, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    try {
      symlinkSync(busybox!, join(bin, applet));
    } catch {
      /* already there */
    }
  }
  return bin;
}

const shells = [
  { name: '/bin/sh', runShArg: 'sh' },
  { name: 'busybox sh', runShArg: 'busybox' },
];

const cases = readdirSync(join(dir, 'test/cases')).sort();
const yamlSamples = readdirSync(join(dir, 'test/yaml'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => `yaml/${f.slice(0, -5)}`)
  .sort();

/** The parser's output format: path TAB value, "/"-joined keys (%2F, %25), escaped values. */
function flatten(value: unknown, path: string, out: string[]): void {
  if (value === null || value === undefined) return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => flatten(v, path === '' ? String(i) : `${path}/${i}`, out));
    return;
  }
  if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const key = k.replace(/%/g, '%25').replace(/\//g, '%2F').replace(/[\t\n]/g, ' ');
      flatten(v, path === '' ? key : `${path}/${key}`, out);
    }
    return;
  }
  const s = String(value).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\t/g, '\\t');
  out.push(`${path}\t${s}`);
}

/** A small deterministic generator of awkward strings and structures. */
function generator(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
  const pick = <T>(a: T[]): T => a[Math.floor(next() * a.length)]!;
  const pieces = [
    'ssh-ed25519', 'AAAAC3NzaC1lZDI1NTE5AAAAIHxiUXcp5as6LTh8mESwX+tk7cTSFBne5pqwCkKN3xMY', 'user@host',
    'ALL=(ALL)', 'NOPASSWD:ALL', 'a: b', ' #', '# x', "it's", '"q"', '\\', '[x]', '{y}', ', ', '- ',
    'é', 'true', 'null', '~', '12:30', 'http://h:1/p#f', '%', '/', '  ', '\t', '\n', '\n\n', '*a', '&b', '!t',
    'word', 'x'.repeat(50), '?', ':', '-', '|', '>', "'", '"',
  ];
  const str = (): string => {
    const n = 1 + Math.floor(next() * 6);
    let s = '';
    for (let i = 0; i < n; i++) s += (i && next() < 0.5 ? ' ' : '') + pick(pieces);
    return s;
  };
  const key = (): string => (next() < 0.7 ? pick(['name', 'sudo', 'users', 'a', 'b-c', 'd_e']) : str().replace(/\n/g, ' '));
  const node = (depth: number): unknown => {
    const r = next();
    if (depth > 3 || r < 0.45) return r < 0.05 ? Math.floor(next() * 1000) : r < 0.08 ? next() < 0.5 : str();
    if (r < 0.7) return Array.from({ length: 1 + Math.floor(next() * 4) }, () => node(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = 0, n = 1 + Math.floor(next() * 4); i < n; i++) o[key()] = node(depth + 1);
    return o;
  };
  return { node, next };
}

for (const shell of shells) {
  describe(`vmenv-nocloud under ${shell.name}`, () => {
    const needs = () => {
      if (shell.runShArg === 'busybox' && !busybox) {
        throw new Error('busybox is not installed: apt-get install busybox-static');
      }
    };

    // one run.sh over every sample; each sample is its own test below
    let report: string | undefined;
    const reportOf = (): string => {
      if (report === undefined) {
        const r = spawnSync('sh', [runSh, '--shell', shell.runShArg], { encoding: 'utf8', timeout: 60_000 });
        report = r.stdout + r.stderr;
      }
      return report;
    };
    for (const c of [...cases, ...yamlSamples]) {
      it(`${c} matches its expected output`, () => {
        needs();
        const lines = reportOf().split('\n');
        const at = lines.findIndex((l) => l === `ok ${c}` || l === `not ok ${c}` || l.startsWith(`not ok ${c}:`));
        expect(at, `run.sh --shell ${shell.runShArg} did not report ${c}:\n${reportOf()}`).toBeGreaterThanOrEqual(0);
        const detail = [lines[at]!];
        for (let i = at + 1; i < lines.length && lines[i]!.startsWith('    '); i++) detail.push(lines[i]!);
        expect(detail.join('\n')).toBe(`ok ${c}`);
      }, 60_000);
    }

    const run = (args: string[], env: Record<string, string> = {}) => {
      const path = shell.runShArg === 'busybox' ? busyboxBin() : process.env.PATH!;
      const sh = shell.runShArg === 'busybox' ? join(path, 'sh') : '/bin/sh';
      return spawnSync(sh, [script, ...args], {
        encoding: 'utf8',
        timeout: 20_000,
        env: { PATH: path, ...env },
      });
    };

    it('reads what the yaml library writes, at every line width, as the yaml library reads it', () => {
      needs();
      // two generators per shell, so the shells see different documents
      let checked = 0;
      for (const seed of shell.runShArg === 'busybox' ? [11, 14] : [111, 114]) {
        const gen = generator(seed);
        for (let i = 0; i < 40; i++) {
          const doc: Record<string, unknown> = {};
          for (let j = 0; j < 4; j++) doc[`k${j}`] = gen.node(0);
          const text = stringify(doc, { lineWidth: [0, 20, 40, 80][i % 4]!, minContentWidth: 0, flowCollectionPadding: i % 2 === 0 });
          let reference: unknown;
          try {
            reference = parse(text);
          } catch {
            continue; // the library wrote something it cannot read back itself: no reference
          }
          const file = join(tmp, `gen-${shell.runShArg}-${seed}-${i}.yaml`);
          writeFileSync(file, text);
          const r = run(['--dump-yaml', file]);
          const want: string[] = [];
          flatten(reference, '', want);
          expect(r.stdout.split('\n').filter(Boolean), `document ${seed}/${i}:\n${text}`).toEqual(want);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(60);
    }, 60_000); // 80 runs of the script: over 10 s on a loaded machine

    it("reads the seeds vmenv's own seed writer renders (long keys folded over lines)", () => {
      needs();
      const key = (n: number) =>
        `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${'x'.repeat(43)}${n} vmenv-generated-key-for-machine-${n}@a-long-host-name`;
      const files = renderSeed({
        instanceId: 'vmenv-1234abcd',
        hostname: 'web-1',
        sshAuthorizedKeys: [key(1)],
        users: [
          { name: 'deploy', sshAuthorizedKeys: [key(2), key(3)], shell: '/bin/sh' },
          { name: 'nosudo', sshAuthorizedKeys: [key(4)], sudo: false },
        ],
        networkConfig: {
          version: 2,
          ethernets: { eth0: { match: { macaddress: '52:54:00:12:34:56' }, addresses: ['10.0.0.5/24'], gateway4: '10.0.0.1', nameservers: { addresses: ['10.0.0.1'] } } },
        },
      });
      const seed = join(tmp, `seed-${shell.runShArg}`);
      const root = join(tmp, `root-${shell.runShArg}`);
      mkdirSync(seed, { recursive: true });
      mkdirSync(join(root, 'etc/sudoers.d'), { recursive: true });
      writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nvagrant:x:1000:1000::/home/vagrant:/bin/sh\n');
      writeFileSync(join(root, 'etc/group'), 'root:x:0:\nvagrant:x:1000:\n');
      for (const [name, body] of Object.entries(files)) writeFileSync(join(seed, name), body!);
      const r = run(['--seed', seed, '--print'], {
        VMENV_NOCLOUD_ROOT: root,
        VMENV_NOCLOUD_IFACES: 'eth0=52:54:00:12:34:56',
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.split('\n').filter(Boolean)).toEqual([
        'instance-id vmenv-1234abcd',
        'hostname|web-1',
        'user|vagrant|1',
        `key|vagrant|${key(1)}`,
        'user|deploy|0|/bin/sh',
        `key|deploy|${key(2)}`,
        `key|deploy|${key(3)}`,
        'sudo|deploy|ALL=(ALL) NOPASSWD:ALL',
        'user|nosudo|0',
        `key|nosudo|${key(4)}`,
        'nosudo|nosudo',
        'net link eth0 - -',
        'net addr eth0 10.0.0.5/24',
        'net gw eth0 10.0.0.1',
        'net dns 10.0.0.1',
      ]);
    });

    it("reads a seed merged with the user's own cloud-config and network-config (seed.ts)", () => {
      needs();
      const key = (n: number) => `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${'y'.repeat(43)}${n} key-${n}@a-long-host-name-for-folding`;
      const files = renderSeed({
        instanceId: 'vmenv-merged',
        hostname: 'web-1',
        sshAuthorizedKeys: [key(1)],
        loginUser: 'vagrant',
        userData: {
          hostname: 'shop-dev',
          ssh_authorized_keys: key(2),
          users: [
            { name: 'deploy', groups: 'wheel, ops', sudo: ['ALL=(ALL) NOPASSWD:ALL'], ssh_authorized_keys: [key(3)], shell: '/bin/sh' },
            'plain',
          ],
          groups: ['ops'],
          packages: ['nginx', 'yes'],
          runcmd: [['sh', '-c', 'echo "a: b" # not a comment'], 'touch /x'],
          write_files: [{ path: '/etc/motd', permissions: '0644', content: 'line one\nline: two\n' }],
          package_upgrade: true,
        },
        networkConfig: { network: { version: 1, config: [{ type: 'physical', name: 'eth0', subnets: [{ type: 'dhcp' }] }] } },
      });
      const seed = join(tmp, `merged-seed-${shell.runShArg}`);
      const root = join(tmp, `merged-root-${shell.runShArg}`);
      mkdirSync(seed, { recursive: true });
      mkdirSync(join(root, 'etc/sudoers.d'), { recursive: true });
      writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\nvagrant:x:1000:1000::/home/vagrant:/bin/sh\n');
      writeFileSync(join(root, 'etc/group'), 'root:x:0:\nvagrant:x:1000:\n');
      for (const [name, body] of Object.entries(files)) writeFileSync(join(seed, name), body!);
      const r = run(['--seed', seed, '--print'], { VMENV_NOCLOUD_ROOT: root, VMENV_NOCLOUD_IFACES: 'eth0=52:54:00:12:34:56' });
      expect(r.status, r.stderr).toBe(0);
      const lines = r.stdout.split('\n').filter(Boolean);
      expect(lines).toEqual([
        'instance-id vmenv-merged',
        'hostname|shop-dev',
        'user|vagrant|1',
        `key|vagrant|${key(1)}`,
        `key|vagrant|${key(2)}`,
        'user|deploy|0|/bin/sh|||wheel,ops',
        `key|deploy|${key(3)}`,
        'sudo|deploy|ALL=(ALL) NOPASSWD:ALL',
        'user|plain|0',
        'net link eth0 - -',
        'net dhcp eth0',
      ]);
      // and the whole user-data reads as the yaml library reads it
      writeFileSync(join(tmp, `merged-${shell.runShArg}.yaml`), files['user-data']);
      const dump = run(['--dump-yaml', join(tmp, `merged-${shell.runShArg}.yaml`)]);
      const want: string[] = [];
      flatten(parse(files['user-data'], { version: '1.1' }), '', want);
      expect(dump.stdout.split('\n').filter(Boolean)).toEqual(want);
    });
  });
}
