import { describe, expect, it } from 'vitest';
import {
  XmlCharacterError,
  XmlSpecError,
  domainXml,
  el,
  escapeAttr,
  escapeText,
  networkXml,
  poolXml,
  renderXml,
  volumeXml,
} from '../../../src/libvirt/xml/index.js';
import type { DomainSpec } from '../../../src/libvirt/xml/index.js';
import { UserError } from '../../../src/errors.js';
import { assertWellFormed, parseWithLibvirt, validateXml, xpathString } from './helpers.js';

describe('writer', () => {
  it('renders nested elements with 2-space indentation, self-closing empties, inline text', () => {
    const xml = renderXml(el('a', { x: '1', skip: undefined, n: 2, b: 10n }, el('b'), el('c', {}, 'text', 3), el('d', {}, el('e', { k: 'v' }))));
    expect(xml).toBe(
      [
        "<a x='1' n='2' b='10'>",
        '  <b/>',
        '  <c>text3</c>',
        '  <d>',
        "    <e k='v'/>",
        '  </d>',
        '</a>',
        '',
      ].join('\n'),
    );
  });

  it('skips false, null and undefined children and flattens arrays', () => {
    expect(renderXml(el('a', {}, false, null, undefined, [el('b'), [el('c')]]))).toBe('<a>\n  <b/>\n  <c/>\n</a>\n');
  });

  it('escapes the five special characters in text and attributes', () => {
    expect(escapeText(`a&b<c>d"e'f`)).toBe('a&amp;b&lt;c&gt;d&quot;e&apos;f');
    expect(escapeAttr(`a&b<c>d"e'f`)).toBe('a&amp;b&lt;c&gt;d&quot;e&apos;f');
    expect(escapeAttr('t\tn\nr\r')).toBe('t&#9;n&#10;r&#13;');
    expect(escapeText('n\nr\r')).toBe('n\nr&#13;');
  });

  it('keeps escaped values intact through a real parser', () => {
    const hostile = `x' y="z" <evil attr='1'/> &amp; &#65; ]]> \t\n\r end`;
    const xml = renderXml(el('root', { v: hostile }, el('t', {}, hostile)));
    assertWellFormed(xml);
    expect(xpathString(xml, '/root/@v')).toBe(hostile);
    expect(xpathString(xml, '/root/t')).toBe(hostile);
    expect(xpathString(xml, 'count(//evil)')).toBe('0');
  });

  it.each([0x0, 0x1, 0x8, 0xb, 0xc, 0x1f, 0xfffe, 0xffff, 0xd800])('rejects U+%s in text and attributes', (cp) => {
    const bad = `ok${String.fromCharCode(cp)}`;
    for (const build of [() => el('a', {}, bad), () => el('a', { v: bad })]) {
      let err: unknown;
      try {
        renderXml(el('root', {}, build()));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(XmlCharacterError);
      expect(err).toBeInstanceOf(UserError);
      expect((err as XmlCharacterError).codePoint).toBe(cp);
      expect((err as XmlCharacterError).index).toBe(2);
      expect((err as XmlCharacterError).field).toMatch(/^XML value at root\/a/);
    }
  });

  it('accepts characters beyond the BMP', () => {
    const xml = renderXml(el('a', { v: 'snow ☃ and 😀' }, '𝄞'));
    expect(xpathString(xml, '/a/@v')).toBe('snow ☃ and 😀');
    expect(xpathString(xml, '/a')).toBe('𝄞');
  });

  it('rejects invalid element and attribute names and non-finite numbers (bugs, not user errors)', () => {
    expect(() => el('1a')).toThrow(/element name/);
    expect(() => el('a b')).toThrow(/element name/);
    expect(() => el('a', { 'x y': '1' })).toThrow(/attribute name/);
    expect(() => el('a', { x: Number.NaN })).toThrow(/number/);
    expect(() => el('a', {}, Number.POSITIVE_INFINITY)).toThrow(/number/);
    expect(() => el('a', {}, '1a')).not.toThrow();
  });

  it('refuses mixed content', () => {
    expect(() => renderXml(el('a', {}, 'x', el('b')))).toThrow(/Mixed content/);
  });
});

describe('hostile names through the builders', () => {
  const nasty = `we"ird 'n<a>me' & <!-- co -->`;
  const nastyPath = `/home/dev/it's "my" <proj> & more`;

  const domain: DomainSpec = {
    name: nasty,
    description: nasty,
    type: 'qemu',
    memoryMiB: 256,
    vcpus: 1,
    disks: [
      { source: { kind: 'file', path: `${nastyPath}/disk.qcow2` }, target: 'vda' },
      { source: { kind: 'volume', pool: nasty, volume: `${nasty}.qcow2` }, target: 'vdb' },
    ],
    interfaces: [{ type: 'network', network: nasty }],
    filesystems: [{ driver: '9p', source: nastyPath, target: 'project' }],
    serial: { logFile: `${nastyPath}/console.log` },
    metadata: { projectPath: nastyPath, machine: nasty, box: nasty },
    qemuArgs: [nasty, "-append 'a\tb\nc'"],
  };

  it('domain: well-formed, values parse back unchanged, schema-valid', () => {
    const xml = domainXml(domain);
    assertWellFormed(xml);
    expect(xpathString(xml, '/domain/name')).toBe(nasty);
    expect(xpathString(xml, '/domain/description')).toBe(nasty);
    expect(xpathString(xml, "/domain/devices/disk[1]/source/@file")).toBe(`${nastyPath}/disk.qcow2`);
    expect(xpathString(xml, "/domain/devices/disk[2]/source/@pool")).toBe(nasty);
    expect(xpathString(xml, "/domain/devices/disk[2]/source/@volume")).toBe(`${nasty}.qcow2`);
    expect(xpathString(xml, '/domain/devices/interface/source/@network')).toBe(nasty);
    expect(xpathString(xml, '/domain/devices/filesystem/source/@dir')).toBe(nastyPath);
    expect(xpathString(xml, '/domain/devices/serial/log/@file')).toBe(`${nastyPath}/console.log`);
    expect(xpathString(xml, "//*[local-name()='project']")).toBe(nastyPath);
    expect(xpathString(xml, "//*[local-name()='machine']/*[local-name()='name']")).toBe(nasty);
    expect(xpathString(xml, "//*[local-name()='arg'][1]/@value")).toBe(nasty);
    expect(xpathString(xml, "//*[local-name()='arg'][2]/@value")).toBe("-append 'a\tb\nc'");
    expect(xpathString(xml, 'count(//comment())')).toBe('0');
    validateXml(xml, 'domain');
    parseWithLibvirt(xml, 'domain');
  });

  it('network, volume and pool: values parse back unchanged, schema-valid', () => {
    const net = networkXml({ name: nasty, forward: { mode: 'none' } });
    expect(xpathString(net, '/network/name')).toBe(nasty);
    validateXml(net, 'network');
    parseWithLibvirt(net, 'network');

    const vol = volumeXml({ name: nasty, capacityBytes: 1024, backingStore: { path: `${nastyPath}/box.img`, format: 'raw' } });
    expect(xpathString(vol, '/volume/name')).toBe(nasty);
    expect(xpathString(vol, '/volume/backingStore/path')).toBe(`${nastyPath}/box.img`);
    validateXml(vol, 'storagevol');
    parseWithLibvirt(vol, 'storagevol');

    const pool = poolXml({ name: nasty, path: nastyPath });
    expect(xpathString(pool, '/pool/name')).toBe(nasty);
    expect(xpathString(pool, '/pool/target/path')).toBe(nastyPath);
    validateXml(pool, 'storagepool');
    parseWithLibvirt(pool, 'storagepool');
  });

  it('a control character anywhere is rejected with a typed error naming the field', () => {
    const bad = 'a\u0007b';
    const attempts: [() => string, string][] = [
      [() => domainXml({ ...domain, name: bad }), 'name'],
      [() => domainXml({ ...domain, description: bad }), 'description'],
      [() => domainXml({ ...domain, serial: { logFile: `/tmp/${bad}` } }), 'serial.logFile'],
      [() => domainXml({ ...domain, metadata: { projectPath: '/p', machine: bad } }), 'metadata.machine'],
      [() => domainXml({ ...domain, qemuArgs: [bad] }), 'qemuArgs[0]'],
      [() => domainXml({ ...domain, disks: [{ source: { kind: 'file', path: `/x/${bad}` }, target: 'vda' }] }), 'disks[0].source.path'],
      [() => networkXml({ name: bad, forward: { mode: 'none' } }), 'name'],
      [() => volumeXml({ name: bad, capacityBytes: 1 }), 'name'],
      [() => poolXml({ name: 'p', path: `/x${bad}` }), 'path'],
    ];
    for (const [attempt, field] of attempts) {
      let err: unknown;
      try {
        attempt();
      } catch (e) {
        err = e;
      }
      expect(err, field).toBeInstanceOf(XmlCharacterError);
      expect((err as XmlCharacterError).field).toBe(field);
      expect((err as XmlCharacterError).codePoint).toBe(7);
      expect((err as Error).message).toContain('U+0007');
    }
  });

  it('a newline in an object name is a spec error, in a path it is carried', () => {
    expect(() => domainXml({ ...domain, name: 'a\nb' })).toThrow(XmlSpecError);
    const xml = domainXml({ ...domain, disks: [{ source: { kind: 'file', path: '/tmp/a\nb' }, target: 'vda' }] });
    expect(xpathString(xml, '/domain/devices/disk/source/@file')).toBe('/tmp/a\nb');
  });
});
