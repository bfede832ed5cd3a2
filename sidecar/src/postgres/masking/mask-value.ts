import { createHmac } from 'node:crypto';
import type { MaskStrategy } from '../statement-guard.js';

// Types whose text and binary representations are the same UTF-8 bytes, so a masked value can be
// substituted in either format (text, varchar, bpchar, name, citext-like unknown, json, xml).
const TEXTUAL_TYPE_OIDS = new Set([25, 1043, 1042, 19, 705, 114, 142]);

export function isTextual(typeOid: number): boolean {
  return TEXTUAL_TYPE_OIDS.has(typeOid);
}

const REDACTED = Buffer.from('[REDACTED]');

/**
 * Masks one cell. Returns the replacement bytes, or null for SQL NULL. A non-textual value in
 * binary format becomes NULL (we cannot produce a valid binary value of an arbitrary type); a
 * non-textual value in text format becomes NULL too, so that clients parsing e.g. an int never see
 * "[REDACTED]".
 */
export function maskValue(
  value: Buffer,
  strategy: MaskStrategy,
  typeOid: number,
  hashKey: Buffer,
): Buffer | null {
  if (strategy === 'null' || !isTextual(typeOid)) return null;
  switch (strategy) {
    case 'redact':
      return REDACTED;
    case 'partial': {
      // Keep the last 4 characters when the value is long enough for that to hide something.
      const text = value.toString('utf8');
      const chars = [...text];
      const keep = chars.length >= 8 ? 4 : chars.length >= 5 ? 2 : 0;
      return Buffer.from(
        `${'*'.repeat(Math.max(chars.length - keep, 4))}${chars.slice(chars.length - keep).join('')}`,
      );
    }
    case 'hash':
      // Keyed, so equal values stay joinable within a deployment but cannot be brute-forced offline.
      return Buffer.from(`hash:${createHmac('sha256', hashKey).update(value).digest('hex').slice(0, 16)}`);
  }
}
