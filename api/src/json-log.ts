export type LogLevel = 'info' | 'warn' | 'error';

/**
 * How every Chaperone component logs: a level, a message, and structured fields. Pass one around
 * instead of writing this shape out; `jsonLog` is the process-wide implementation.
 */
export type Logger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

/** Field names whose values are secrets wherever they appear: never written, whoever passes them. */
const SECRET_FIELDS = new Set(['password', 'secret', 'token', 'privatekey', 'authorization', 'credential']);

/**
 * One log line on stderr as JSON (time, level, msg, fields): the format of every Chaperone process.
 * A top-level field named like a secret (password, token, …) is written as "[redacted]".
 */
export const jsonLog: Logger = (level, message, fields = {}) => {
  let safe = fields;
  for (const key of Object.keys(fields)) {
    if (!SECRET_FIELDS.has(key.toLowerCase())) continue;
    if (safe === fields) safe = { ...fields };
    safe[key] = '[redacted]';
  }
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...safe })}\n`,
  );
};
