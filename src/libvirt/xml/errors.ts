/**
 * Errors raised while turning a spec into libvirt XML. Both are the user's kind of
 * error: the values come from `vmenv.yaml`, the project path or the box, and the
 * message names the offending field so it can be fixed.
 */
import { ExitCode, UserError } from '../../errors.js';

/** A spec value that libvirt would reject (or that would not mean what was asked). */
export class XmlSpecError extends UserError {
  /** Path of the offending field inside the spec, e.g. `disks[1].target`. */
  readonly field: string;

  constructor(field: string, message: string, hint?: string) {
    super(`Invalid ${field}: ${message}`, {
      exitCode: ExitCode.usage,
      ...(hint === undefined ? {} : { hint }),
    });
    this.name = 'XmlSpecError';
    this.field = field;
  }
}

/**
 * A string holds a character that an XML 1.0 document cannot carry at all (a control
 * character other than tab, newline and carriage return, a lone surrogate, U+FFFE or
 * U+FFFF). Escaping cannot help: not even `&#1;` is allowed in XML 1.0.
 */
export class XmlCharacterError extends XmlSpecError {
  /** The rejected code point. */
  readonly codePoint: number;
  /** Its index (UTF-16 code units) in the string. */
  readonly index: number;

  constructor(where: string, codePoint: number, index: number) {
    const hex = codePoint.toString(16).toUpperCase().padStart(4, '0');
    super(
      where,
      `contains the character U+${hex} at position ${index}, which XML 1.0 cannot represent`,
      'Remove control characters from names, paths and other values.',
    );
    this.name = 'XmlCharacterError';
    this.codePoint = codePoint;
    this.index = index;
  }
}
