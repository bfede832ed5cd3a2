import type { MaskingStrategy } from '@chaperone/api';
import { maskBytes } from '../../../masking/mask-value.js';

// Types whose text and binary representations are the same UTF-8 bytes, so a masked value can be
// substituted in either format (text, varchar, bpchar, name, citext-like unknown, json, xml).
const TEXTUAL_TYPE_OIDS = new Set([25, 1043, 1042, 19, 705, 114, 142]);

export function isTextual(typeOid: number): boolean {
  return TEXTUAL_TYPE_OIDS.has(typeOid);
}

/**
 * Masks one cell. Returns the replacement bytes, or null for SQL NULL. A non-textual value in
 * binary format becomes NULL (we cannot produce a valid binary value of an arbitrary type); a
 * non-textual value in text format becomes NULL too, so that clients parsing e.g. an int never see
 * "[REDACTED]".
 */
export function maskValue(
  value: Buffer,
  strategy: MaskingStrategy,
  typeOid: number,
  hashKey: Buffer,
): Buffer | null {
  return isTextual(typeOid) ? maskBytes(value, strategy, hashKey) : null;
}
