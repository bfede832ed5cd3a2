import { createHmac } from 'node:crypto';
import type { MaskingStrategy } from '@chaperone/api';

const REDACTED = Buffer.from('[REDACTED]');

/**
 * Applies a masking strategy to one value's UTF-8 bytes, whatever protocol carried it. Returns the
 * replacement bytes, or null when the value must be withheld entirely ('null'). Protocols decide
 * first whether a value is text at all (a PostgreSQL int cell cannot hold "[REDACTED]").
 */
export function maskBytes(value: Buffer, strategy: MaskingStrategy, hashKey: Buffer): Buffer | null {
  switch (strategy) {
    case 'null':
      return null;
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
