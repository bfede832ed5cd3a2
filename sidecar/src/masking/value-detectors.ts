// Value detectors: does a text value contain something sensitive? Used for result cells without an
// origin column, SSH output and Kubernetes responses, so they run on many values: each detector
// starts with a cheap check (indexOf or a short regex) and only then runs its real match. All
// regexes here are linear-time (no nested ambiguous quantifiers; token starts are anchored by
// lookbehind), and callers scan at most MAX_SCAN_CHARS of a value.

import type { DetectorType } from '@chaperone/api';

/** Only the first 64 Ki characters of a value are scanned; a secret beyond that is not detected. */
export const MAX_SCAN_CHARS = 64 * 1024;

export type BuiltinDetectorType = Exclude<DetectorType, 'custom'>;
export type TextTest = (text: string) => boolean;

const isDigit = (c: number) => c >= 48 && c <= 57;
const isAlnum = (c: number) => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isWordChar = (c: number) => isAlnum(c) || c === 95;

// ---- email -------------------------------------------------------------------------------------

const LOCAL_CHAR = /[A-Za-z0-9._%+-]/;
// Sticky, run from just after an '@'. The domain's character classes exclude '@', so no scan crosses
// into the next '@': all scans together are linear in the text.
const DOMAIN = /[A-Za-z0-9][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/y;

/** local@domain.tld: a local-part character before an '@' and a dotted domain with a letter TLD after it. */
export function containsEmail(text: string): boolean {
  for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
    if (at === 0 || !LOCAL_CHAR.test(text.charAt(at - 1)) || !isAlnum(text.charCodeAt(at + 1))) continue;
    DOMAIN.lastIndex = at + 1;
    if (DOMAIN.test(text)) return true;
  }
  return false;
}

// ---- credit card -------------------------------------------------------------------------------

/** The Luhn (mod 10) checksum over a string of digits. */
export function luhnValid(digits: string): boolean {
  return /^\d+$/.test(digits) && luhnOfDigits(digits);
}

function luhnOfDigits(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** Prefixes of the major networks: Visa 4, Mastercard 51–55 and 2221–2720, Amex 34/37, Diners 30/36/38/39, JCB 35, Discover/UnionPay/Maestro 6, Maestro 5. */
function plausibleCardPrefix(d: string): boolean {
  switch (d.charAt(0)) {
    case '4':
    case '5':
    case '6':
      return true;
    case '3':
      return d.length > 1 && '0456789'.includes(d.charAt(1));
    case '2': {
      const p4 = Number(d.slice(0, 4));
      return p4 >= 2221 && p4 <= 2720;
    }
    default:
      return false;
  }
}

/** Whether some window of whole groups of a run ("4111 1111 1111 1111 5500") is a card number. */
function runHasCard(run: string): boolean {
  const groups = run.split(/[ -]/);
  for (let i = 0; i < groups.length; i++) {
    let candidate = '';
    for (let j = i; j < groups.length; j++) {
      const group = groups[j] ?? '';
      candidate += group;
      if (candidate.length > 19) break;
      if (candidate.length >= 13 && plausibleCardPrefix(candidate) && luhnOfDigits(candidate)) return true;
      // Cards are written in groups of 3 or more digits (4-4-4-4, 4-6-5 …); "1 2 3 4 …" is not a card,
      // and stopping here keeps the window search linear in the run.
      if (group.length < 3) break;
    }
  }
  return false;
}

/**
 * A card number: 13–19 digits, optionally grouped with single spaces or dashes, with a major
 * network's prefix and a valid Luhn checksum. A run of groups longer than 19 digits is searched for
 * a window of whole groups that is a card ("4111 1111 1111 1111 5500 …"). Digits glued to letters
 * (hex ids, hashes) are not card numbers. A hand-written scan, because this runs on every value.
 */
export function containsCardNumber(text: string): boolean {
  const n = text.length;
  let i = 0;
  while (i < n) {
    if (!isDigit(text.charCodeAt(i))) {
      i++;
      continue;
    }
    const start = i;
    let digits = 0;
    let group = 0;
    let longestGroup = 0;
    let end = i;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (isDigit(c)) {
        digits++;
        if (++group > longestGroup) longestGroup = group;
        end = ++i;
      } else if ((c === 32 || c === 45) && i + 1 < n && isDigit(text.charCodeAt(i + 1))) {
        group = 0;
        i++;
      } else {
        break;
      }
    }
    // Without a group of 3+ digits no window of runHasCard reaches 13 digits.
    if (digits < 13 || longestGroup < 3) continue;
    if (start > 0 && isWordChar(text.charCodeAt(start - 1))) continue;
    if (end < n && isWordChar(text.charCodeAt(end))) continue;
    if (runHasCard(text.slice(start, end))) return true;
  }
  return false;
}

// ---- national id -------------------------------------------------------------------------------

// US SSN AAA-GG-SSSS (dashes or spaces, the same twice): area not 000, 666 or 9xx (900–999 are
// ITINs and never SSNs), group not 00, serial not 0000. Bare 9-digit runs are not matched: too many
// other things are 9 digits.
const US_SSN = /(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])/;
// UK National Insurance number, e.g. AB123456C or AB 12 34 56 C: letters D, F, I, Q, U, V never
// appear in the prefix, O not second, prefixes BG GB KN NK NT TN ZZ are not allocated; suffix A–D.
const UK_NINO =
  /(?<![A-Za-z0-9])(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])/;

export function containsNationalId(text: string): boolean {
  return US_SSN.test(text) || UK_NINO.test(text);
}

// ---- jwt ---------------------------------------------------------------------------------------

// header.payload.signature, base64url; the header is JSON and so starts with 'eyJ' ('{"').
// The signature may be empty (alg "none"). The lookbehind anchors each match at a token start.
const JWT = /(?<![A-Za-z0-9_-])(eyJ[A-Za-z0-9_-]{1,4093})\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

function jwtHeaderHasAlg(segment: string): boolean {
  try {
    const header: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return (
      typeof header === 'object' && header !== null && typeof (header as { alg?: unknown }).alg === 'string'
    );
  } catch {
    return false;
  }
}

export function containsJwt(text: string): boolean {
  if (!text.includes('eyJ')) return false;
  JWT.lastIndex = 0;
  for (let m = JWT.exec(text); m !== null; m = JWT.exec(text)) {
    if (m[1] && jwtHeaderHasAlg(m[1])) return true;
  }
  return false;
}

// ---- cloud keys --------------------------------------------------------------------------------

// AWS access key ids (AKIA long-term, ASIA temporary) + 16 characters; GCP API keys (AIza + 35);
// Azure Storage and Service Bus / Event Hubs connection-string keys (AccountKey=, SharedAccessKey=).
const AWS_KEY_ID = /(?<![A-Za-z0-9])A(?:KI|SI)A[A-Z0-9]{16}(?![A-Za-z0-9])/;
const GCP_API_KEY = /(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/;
const AZURE_KEY = /(?:AccountKey|SharedAccessKey)=[A-Za-z0-9+/]{40,88}={0,2}/;

export function containsCloudKey(text: string): boolean {
  return (
    ((text.includes('AKIA') || text.includes('ASIA')) && AWS_KEY_ID.test(text)) ||
    (text.includes('AIza') && GCP_API_KEY.test(text)) ||
    (text.includes('Key=') && AZURE_KEY.test(text))
  );
}

// ---- private keys ------------------------------------------------------------------------------

// PEM (RSA, EC, DSA, ENCRYPTED, PKCS#8 …), OpenSSH, PGP private key blocks, PuTTY .ppk files.
const PEM_PRIVATE_KEY = /-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----/;
const PUTTY_KEY = /PuTTY-User-Key-File-\d+:/;

export function containsPrivateKey(text: string): boolean {
  return (
    (text.includes('PRIVATE KEY') && PEM_PRIVATE_KEY.test(text)) ||
    (text.includes('PuTTY-User-Key-File-') && PUTTY_KEY.test(text))
  );
}

export const BUILTIN_DETECTORS: Readonly<Record<BuiltinDetectorType, TextTest>> = Object.freeze({
  email: containsEmail,
  'credit-card': containsCardNumber,
  'national-id': containsNationalId,
  jwt: containsJwt,
  'cloud-key': containsCloudKey,
  'private-key': containsPrivateKey,
});

export function isBuiltinDetector(type: unknown): type is BuiltinDetectorType {
  return typeof type === 'string' && Object.hasOwn(BUILTIN_DETECTORS, type);
}

// ---- custom ------------------------------------------------------------------------------------

/**
 * Why a custom pattern is not in the syntax common to RE2 and JavaScript that the CRD promises
 * (backreferences and lookaround are JavaScript-only and can take exponential time), or undefined.
 */
export function nonPortableConstruct(pattern: string): string | undefined {
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (!inClass && /[1-9]/.test(next)) return 'a backreference (\\1 …)';
      if (!inClass && next === 'k' && pattern[i + 2] === '<') return 'a named backreference (\\k<…>)';
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
    } else if (c === '(' && pattern[i + 1] === '?') {
      const rest = pattern.slice(i + 2, i + 4);
      if (rest.startsWith('=') || rest.startsWith('!') || rest === '<=' || rest === '<!')
        return 'lookaround ((?=, (?!, (?<=, (?<!)';
    }
  }
  return undefined;
}

/** Compiles a custom detector's pattern once, or says why it cannot be used. */
export function compileCustomPattern(pattern: unknown): { test: TextTest } | { error: string } {
  if (typeof pattern !== 'string' || pattern.length === 0) return { error: 'pattern is missing' };
  if (pattern.length > 1024) return { error: 'pattern is longer than 1024 characters' };
  const bad = nonPortableConstruct(pattern);
  if (bad) return { error: `pattern uses ${bad}, which RE2 does not support` };
  try {
    const re = new RegExp(pattern);
    return { test: (text) => re.test(text) };
  } catch (err) {
    return { error: `pattern is not a valid regular expression: ${(err as Error).message}` };
  }
}
