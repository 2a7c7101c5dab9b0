/**
 * A tiny XML element builder. Build a tree with `el()`, turn it into text with
 * `renderXml()`. Every text and attribute value is escaped, so values such as a name
 * with quotes, `<` or `&` can neither break the document nor inject elements; characters
 * that XML 1.0 cannot carry at all are rejected with an XmlCharacterError naming where
 * they were found.
 *
 * Output is stable: attributes in insertion order, single quotes (as libvirt writes its
 * own XML), two-space indentation, empty elements self-closed, an element whose only
 * children are text kept on one line, and a final newline. No XML declaration.
 */
import { XmlCharacterError } from './errors.js';

/** An attribute value; `undefined` leaves the attribute out. */
export type XmlAttrValue = string | number | bigint | undefined;

export interface XmlElement {
  readonly kind: 'element';
  readonly name: string;
  readonly attrs: readonly (readonly [string, string])[];
  readonly children: readonly XmlNode[];
}

export interface XmlText {
  readonly kind: 'text';
  readonly value: string;
}

export type XmlNode = XmlElement | XmlText;

/**
 * What `el()` accepts as children: nodes, strings and numbers (as text), nested arrays
 * (flattened), and `undefined`/`null`/`false` (skipped, for conditional children).
 */
export type XmlChild = XmlNode | string | number | bigint | null | undefined | false | readonly XmlChild[];

/** Element and attribute names: an XML Name, optionally with one namespace prefix. */
const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*(?::[A-Za-z_][A-Za-z0-9_.-]*)?$/;

function checkName(name: string, what: string): void {
  if (!NAME.test(name)) {
    // Names come from vmenv's own code, never from the user: this is a bug.
    throw new Error(`Invalid XML ${what} name: ${JSON.stringify(name)}`);
  }
}

function numberText(value: number | bigint): string {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new Error(`Cannot write the number ${value} into XML`);
  }
  return String(value);
}

/** Build an element. Attributes keep the order of the object's keys. */
export function el(
  name: string,
  attrs: Readonly<Record<string, XmlAttrValue>> = {},
  ...children: XmlChild[]
): XmlElement {
  checkName(name, 'element');
  const attrList: (readonly [string, string])[] = [];
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined) continue;
    checkName(key, 'attribute');
    attrList.push([key, typeof value === 'string' ? value : numberText(value)]);
  }
  const nodes: XmlNode[] = [];
  const add = (child: XmlChild): void => {
    if (child === undefined || child === null || child === false) return;
    if (typeof child === 'string') nodes.push(text(child));
    else if (typeof child === 'number' || typeof child === 'bigint') nodes.push(text(numberText(child)));
    else if (Array.isArray(child)) for (const c of child as readonly XmlChild[]) add(c);
    else nodes.push(child as XmlNode);
  };
  for (const child of children) add(child);
  return { kind: 'element', name, attrs: attrList, children: nodes };
}

/** A text node. */
export function text(value: string): XmlText {
  return { kind: 'text', value };
}

/** True when the code point may appear in an XML 1.0 document. */
export function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/**
 * Throw an XmlCharacterError if `value` holds a character XML 1.0 cannot carry.
 * `where` names the value in the message (a spec field or an XML location).
 */
export function assertXmlChars(value: string, where: string): void {
  let index = 0;
  for (const ch of value) {
    const cp = ch.codePointAt(0) ?? 0;
    if (!isXmlChar(cp)) throw new XmlCharacterError(where, cp, index);
    index += ch.length;
  }
}

const TEXT_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;',
};
const ATTR_ESCAPES: Readonly<Record<string, string>> = {
  ...TEXT_ESCAPES, '\t': '&#9;', '\n': '&#10;',
};

/**
 * Escape character data. All five XML special characters are escaped; `\r` becomes
 * `&#13;` so that a parser's line-end normalisation cannot change the value.
 */
export function escapeText(value: string): string {
  return value.replace(/[&<>"'\r]/g, (c) => TEXT_ESCAPES[c] ?? c);
}

/**
 * Escape an attribute value. As `escapeText`, plus tab and newline as character
 * references, which attribute-value normalisation would otherwise turn into spaces.
 */
export function escapeAttr(value: string): string {
  return value.replace(/[&<>"'\r\n\t]/g, (c) => ATTR_ESCAPES[c] ?? c);
}

/**
 * The value of XML character data or an attribute as read from libvirt's XML: the five
 * named entities and numeric character references decoded (`&amp;` last, so `&amp;lt;`
 * stays `&lt;`). The inverse of `escapeText` and `escapeAttr`.
 */
export function unescapeXml(value: string): string {
  return value
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&#x([0-9a-fA-F]+);/g, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&amp;/g, '&');
}

function renderElement(node: XmlElement, depth: number, path: string, out: string[]): void {
  const here = path === '' ? node.name : `${path}/${node.name}`;
  const indent = '  '.repeat(depth);
  let open = `${indent}<${node.name}`;
  for (const [key, value] of node.attrs) {
    assertXmlChars(value, `XML value at ${here}/@${key}`);
    open += ` ${key}='${escapeAttr(value)}'`;
  }
  if (node.children.length === 0) {
    out.push(`${open}/>`);
    return;
  }
  const texts = node.children.filter((c): c is XmlText => c.kind === 'text');
  if (texts.length === node.children.length) {
    const body = texts.map((t) => t.value).join('');
    assertXmlChars(body, `XML value at ${here}`);
    out.push(`${open}>${escapeText(body)}</${node.name}>`);
    return;
  }
  if (texts.length > 0) {
    throw new Error(`Mixed content is not supported (element <${here}>)`);
  }
  out.push(`${open}>`);
  for (const child of node.children) renderElement(child as XmlElement, depth + 1, here, out);
  out.push(`${indent}</${node.name}>`);
}

/** Serialise a tree to text: stable, 2-space indented, ending with a newline. */
export function renderXml(root: XmlElement): string {
  const out: string[] = [];
  renderElement(root, 0, '', out);
  return `${out.join('\n')}\n`;
}
