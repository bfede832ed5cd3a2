// Go's time.ParseDuration grammar, because the CRD's durations (approval.timeout, ttl) are Go
// durations that the API server's CEL `duration()` also accepts: a sequence of decimal numbers,
// each with an optional fraction and a unit (ns, us, µs, ms, s, m, h), e.g. '10m', '1h30m', '1.5h'.
// '0' alone is valid, as in Go. Signs are rejected: no duration in our API can be negative.

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const TERM = /(\d*)(?:\.(\d*))?([a-zµμ]+)/y;

export class DurationError extends Error {
  override readonly name = 'DurationError';
}

/** Parses a Go duration string into milliseconds; throws DurationError on anything else. */
export function parseDuration(text: string): number {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64) throw invalid(text);
  if (text === '0') return 0;
  let total = 0;
  TERM.lastIndex = 0;
  while (TERM.lastIndex < text.length) {
    const start = TERM.lastIndex;
    const m = TERM.exec(text);
    if (!m || m.index !== start) throw invalid(text);
    const [, whole = '', fraction = '', unit = ''] = m;
    if (whole === '' && fraction === '') throw invalid(text);
    const scale = UNIT_MS[unit];
    if (scale === undefined) throw invalid(text, `unknown unit "${unit}"`);
    total += Number(`${whole || '0'}.${fraction || '0'}`) * scale;
  }
  if (!Number.isFinite(total) || total > Number.MAX_SAFE_INTEGER) throw invalid(text, 'too large');
  // Sub-millisecond parts are kept exact where they add up (1500us = 1.5ms) but float noise is not.
  return Math.round(total * 1e6) / 1e6;
}

function invalid(text: unknown, why?: string): DurationError {
  const shown = typeof text === 'string' ? JSON.stringify(text.slice(0, 64)) : String(text);
  return new DurationError(
    `invalid duration ${shown}${why ? ` (${why})` : ''}: expected a Go duration such as 45s, 10m or 1h30m`,
  );
}

/** Short human form for messages: 90000 → '1m30s', 600000 → '10m', 1500 → '1.5s'. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return `${ms}ms`;
  if (ms < 1000) return `${ms}ms`;
  let rest = ms;
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  const s = rest / 1000;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${Number(s.toFixed(3))}s` : ''}`;
}
