// Which startup parameters an agent's StartupMessage may pass on to the server. PostgreSQL treats
// every parameter other than user/database/options/replication as a setting (GUC); the gateway
// forwards only settings that cannot weaken it or confuse its SQL analysis, refuses the others
// with a clear error, and never drops one without a word.
import { SqlState } from './wire/codes.js';

/** Settings forwarded as given: presentation, and limits that only tighten the session. */
const ALLOWED = new Set([
  'application_name',
  'datestyle',
  'timezone',
  'intervalstyle',
  'extra_float_digits',
  'bytea_output',
  'statement_timeout',
  'lock_timeout',
  'idle_in_transaction_session_timeout',
  'idle_session_timeout',
  'default_transaction_isolation',
  'default_transaction_read_only',
  'default_transaction_deferrable',
  'escape_string_warning',
]);

/** Settings that would change how statements are read or resolved, so the analysis would be wrong. */
const REFUSED_WHY: Record<string, string> = {
  search_path:
    'it changes which tables and functions names resolve to, and masking is decided by what they resolve to',
  standard_conforming_strings:
    'it changes how string literals are read, and every statement is analysed as the server reads it',
  role: 'the gateway chooses the role (just-in-time credentials)',
  session_authorization: 'the gateway chooses the role (just-in-time credentials)',
};

/** Parameters of the protocol itself, handled elsewhere (not settings). */
const PROTOCOL = new Set(['user', 'database', 'replication', 'options', 'client_encoding']);

export type StartupDecision =
  | { ok: true; forward: Record<string, string> }
  | { ok: false; code: string; message: string };

/** Splits `options` as PostgreSQL does: blanks separate words, a backslash escapes the next character. */
function splitOptions(options: string): string[] {
  const words: string[] = [];
  let cur = '';
  let has = false;
  for (let i = 0; i < options.length; i++) {
    const ch = options[i] ?? '';
    if (ch === '\\' && i + 1 < options.length) {
      cur += options[++i];
      has = true;
    } else if (/\s/.test(ch)) {
      if (has) words.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (has) words.push(cur);
  return words;
}

/** `-c name=value` / `--name=value` pairs of an `options` parameter, or an error for anything else. */
function optionSettings(options: string): [string, string][] | string {
  const words = splitOptions(options);
  const out: [string, string][] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] ?? '';
    let setting: string | undefined;
    if (w === '-c') setting = words[++i];
    else if (w.startsWith('-c')) setting = w.slice(2);
    else if (w.startsWith('--')) setting = w.slice(2);
    const eq = setting?.indexOf('=') ?? -1;
    if (!setting || eq <= 0) return `option "${w}" is not a -c name=value setting`;
    out.push([setting.slice(0, eq), setting.slice(eq + 1)]);
  }
  return out;
}

const canonical = (name: string) => name.toLowerCase().replaceAll('-', '_');

function refuse(name: string): StartupDecision {
  const why = REFUSED_WHY[canonical(name)];
  return {
    ok: false,
    code: SqlState.featureNotSupported,
    message: why
      ? `chaperone: the startup setting ${name} is not passed through: ${why}`
      : `chaperone: the startup setting ${name} is not passed through; allowed: ${[...ALLOWED].sort().join(', ')}`,
  };
}

/**
 * The settings to send upstream for a StartupMessage's parameters (both spellings: a parameter of
 * its own, or `-c name=value` inside `options`), or the refusal the client gets.
 */
export function startupSettings(params: ReadonlyMap<string, string>): StartupDecision {
  const forward: Record<string, string> = {};
  const settings: [string, string][] = [];
  for (const [k, v] of params) {
    if (k.startsWith('_pq_.')) continue; // protocol extensions: answered by NegotiateProtocolVersion
    if (k === 'options') {
      const parsed = optionSettings(v);
      if (typeof parsed === 'string') {
        return { ok: false, code: SqlState.featureNotSupported, message: `chaperone: startup ${parsed}` };
      }
      settings.push(...parsed);
    } else if (!PROTOCOL.has(k)) settings.push([k, v]);
  }
  for (const [name, value] of settings) {
    if (!ALLOWED.has(canonical(name))) return refuse(name);
    forward[canonical(name)] = value;
  }
  return { ok: true, forward };
}

/**
 * Whether a StartupMessage's `database` names the database this listener serves. libpq sends the
 * user name when none is given, so that reads as "no choice" too.
 */
export function databaseMismatch(
  params: ReadonlyMap<string, string>,
  served: string,
  connection: string,
): { code: string; message: string } | undefined {
  const asked = params.get('database');
  if (asked === undefined || asked === '' || asked === served || asked === params.get('user'))
    return undefined;
  return {
    code: '3D000',
    message: `database "${asked}" does not exist here: this listener serves database "${served}" of connection ${connection}`,
  };
}
