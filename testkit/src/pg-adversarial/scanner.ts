// Finds a secret value in bytes a server sent, in any of the encodings an attacker could ask the
// database to apply before the value leaves it: as is, any letter case, reversed, with separators
// between its characters, hex, base64 at every alignment, URL and JSON escapes, or hashed.
import { createHash } from 'node:crypto';

export interface SecretHit {
  secret: string;
  encoding: string;
}

type Needle = { encoding: string; text: string; fold?: boolean; alnumOnly?: boolean };

function needlesFor(secret: string): Needle[] {
  const bytes = Buffer.from(secret, 'utf8');
  const alnum = secret.replace(/[^0-9a-z]/gi, '');
  const needles: Needle[] = [
    { encoding: 'plain', text: secret },
    { encoding: 'case-folded', text: secret.toLowerCase(), fold: true },
    { encoding: 'reversed', text: [...secret].reverse().join('').toLowerCase(), fold: true },
    { encoding: 'separated', text: alnum.toLowerCase(), fold: true, alnumOnly: true },
    {
      encoding: 'separated-reversed',
      text: [...alnum].reverse().join('').toLowerCase(),
      fold: true,
      alnumOnly: true,
    },
    { encoding: 'hex', text: bytes.toString('hex'), fold: true },
    { encoding: 'url', text: encodeURIComponent(secret).toLowerCase(), fold: true },
    {
      encoding: 'json-unicode',
      text: [...secret].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
      fold: true,
    },
  ];
  // base64 of the value inside any longer byte string: encode with 0, 1 and 2 bytes in front and
  // keep only the characters that depend on the value's bytes alone.
  for (let pad = 0; pad < 3; pad++) {
    const b64 = Buffer.concat([Buffer.alloc(pad), bytes]).toString('base64');
    const skip = pad === 0 ? 0 : pad === 1 ? 2 : 3;
    const tail = (pad + bytes.length) % 3;
    const keep = b64.replace(/=+$/, '').slice(skip, b64.replace(/=+$/, '').length - (tail ? 1 : 0) - 0);
    if (keep.length >= 8) needles.push({ encoding: `base64@${pad}`, text: keep });
  }
  for (const alg of ['md5', 'sha1', 'sha256', 'sha512']) {
    needles.push({ encoding: alg, text: createHash(alg).update(bytes).digest('hex'), fold: true });
    needles.push({
      encoding: `${alg}-base64`,
      text: createHash(alg).update(bytes).digest('base64').replace(/=+$/, ''),
    });
  }
  return needles;
}

/**
 * Returns a scanner over server output for these secrets. Each secret should be long and random
 * enough (12+ characters) that finding it, or its letters and digits in order, is no accident.
 */
export function secretScanner(
  secrets: readonly string[],
): (output: Buffer | string) => SecretHit | undefined {
  const all = secrets.map((s) => ({ secret: s, needles: needlesFor(s) }));
  return (output) => {
    const text = typeof output === 'string' ? output : output.toString('latin1');
    const views = {
      raw: text,
      folded: text.toLowerCase(),
      alnum: text.toLowerCase().replace(/[^0-9a-z]/g, ''),
    };
    for (const { secret, needles } of all) {
      for (const n of needles) {
        const hay = n.alnumOnly ? views.alnum : n.fold ? views.folded : views.raw;
        if (hay.includes(n.text)) return { secret, encoding: n.encoding };
      }
    }
    return undefined;
  };
}
