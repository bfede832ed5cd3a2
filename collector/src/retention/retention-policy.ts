import type { RetentionPolicy } from '../store/event-store.js';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** `90d`, `12h`, `30m`, `45s`, `2w`. */
export function parseDuration(text: string): number {
  const m = /^(\d+)([smhdw])$/.exec(text.trim());
  if (!m)
    throw new Error(
      `invalid duration ${JSON.stringify(text)}: use a number and one of s, m, h, d, w (e.g. 30d)`,
    );
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms <= 0) throw new Error(`invalid duration ${JSON.stringify(text)}: must be positive`);
  return ms;
}

/** `orders-db=30d,*=90d`: per connection, `*` for every other connection. */
export function parseRetention(spec: string): RetentionPolicy {
  const perConnection = new Map<string, number>();
  let defaultMs: number | undefined;
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.lastIndexOf('=');
    if (eq <= 0)
      throw new Error(`invalid retention entry ${JSON.stringify(part)}: expected CONNECTION=AGE or *=AGE`);
    const name = part.slice(0, eq).trim();
    const age = parseDuration(part.slice(eq + 1));
    if (name === '*') {
      if (defaultMs !== undefined) throw new Error('retention: * is given twice');
      defaultMs = age;
    } else {
      if (perConnection.has(name)) throw new Error(`retention: connection ${name} is given twice`);
      perConnection.set(name, age);
    }
  }
  if (!perConnection.size && defaultMs === undefined) throw new Error('retention: no entries');
  return defaultMs === undefined ? { perConnection } : { perConnection, defaultMs };
}

export function describeRetention(p: RetentionPolicy): string {
  const days = (ms: number) => `${+(ms / UNIT_MS.d).toFixed(2)}d`;
  const parts = [...p.perConnection].map(([c, ms]) => `${c}=${days(ms)}`);
  if (p.defaultMs !== undefined) parts.push(`*=${days(p.defaultMs)}`);
  return parts.join(',');
}
