export type LogLevel = 'info' | 'warn' | 'error';

/**
 * How every Chaperone component logs: a level, a message, and structured fields. Pass one around
 * instead of writing this shape out; `jsonLog` is the process-wide implementation.
 */
export type Logger = (level: LogLevel, message: string, fields?: Record<string, unknown>) => void;

/** One log line on stderr as JSON (time, level, msg, fields): the format of every Chaperone process. */
export const jsonLog: Logger = (level, message, fields = {}) => {
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`,
  );
};
