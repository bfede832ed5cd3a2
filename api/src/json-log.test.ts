import { afterEach, describe, expect, it, vi } from 'vitest';
import { jsonLog } from './json-log.js';

function captured(): string[] {
  const lines: string[] = [];
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  return lines;
}

describe('jsonLog', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes one JSON line: time, level, msg, then the fields', () => {
    const lines = captured();
    jsonLog('warn', 'upstream connection failed', { connection: 'orders-db', error: 'refused' });
    expect(lines).toHaveLength(1);
    expect(lines[0]?.endsWith('\n')).toBe(true);
    const line = JSON.parse(lines[0] ?? '');
    expect(Object.keys(line)).toEqual(['time', 'level', 'msg', 'connection', 'error']);
    expect(line).toMatchObject({ level: 'warn', msg: 'upstream connection failed', connection: 'orders-db' });
    expect(Number.isNaN(Date.parse(line.time))).toBe(false);
  });

  it('never writes a field named like a secret, and leaves the caller its object', () => {
    const lines = captured();
    const fields = { user: 'chaperone_1', Password: 'hunter2', token: 'eyJ…', tokenFile: '/var/run/t' };
    jsonLog('info', 'login', fields);
    expect(lines[0]).not.toContain('hunter2');
    expect(lines[0]).not.toContain('eyJ');
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      user: 'chaperone_1',
      Password: '[redacted]',
      token: '[redacted]',
      tokenFile: '/var/run/t',
    });
    expect(fields.Password).toBe('hunter2');
  });
});
