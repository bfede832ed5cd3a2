/** One log line on stderr as JSON (time, level, msg, fields): the format of every Chaperone process. */
export function jsonLog(
  level: 'info' | 'warn' | 'error',
  message: string,
  fields: Record<string, unknown> = {},
): void {
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`,
  );
}
