import { describe, expect, it } from 'vitest';
import { databaseMismatch, startupSettings } from './startup-parameters.js';

const settings = (entries: Record<string, string>) => startupSettings(new Map(Object.entries(entries)));

describe('startupSettings', () => {
  it('forwards presentation settings and limits that only tighten, by their canonical names', () => {
    expect(
      settings({
        user: 'agent',
        database: 'orders',
        client_encoding: 'UTF8',
        application_name: 'psql',
        DateStyle: 'ISO, MDY',
        statement_timeout: '5s',
        '_pq_.ext': 'x',
      }),
    ).toEqual({
      ok: true,
      forward: { application_name: 'psql', datestyle: 'ISO, MDY', statement_timeout: '5s' },
    });
  });

  it('reads -c and -- settings from options, with backslash escapes', () => {
    expect(
      settings({
        options:
          '-c statement_timeout=1s --lock-timeout=2s -cdefault_transaction_read_only=on -c application_name=a\\ b',
      }),
    ).toEqual({
      ok: true,
      forward: {
        statement_timeout: '1s',
        lock_timeout: '2s',
        default_transaction_read_only: 'on',
        application_name: 'a b',
      },
    });
  });

  it.each([
    [{ search_path: 'evil,public' }, /search_path is not passed through: it changes which tables/],
    [{ options: '-c search_path=evil' }, /search_path is not passed through/],
    [{ options: '--Search-Path=evil' }, /Search-Path is not passed through: it changes/],
    [{ standard_conforming_strings: 'off' }, /how string literals are read/],
    [{ options: '-c role=postgres' }, /the gateway chooses the role/],
    [{ 'myapp.tenant': '7' }, /myapp\.tenant is not passed through; allowed: application_name, /],
    [{ work_mem: '1TB' }, /work_mem is not passed through/],
    [{ options: '-X' }, /option "-X" is not a -c name=value setting/],
    [{ options: '-c' }, /option "-c" is not a -c name=value setting/],
  ])('refuses %j with a clear 0A000 error', (params, message) => {
    const r = settings(params as Record<string, string>);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.code).toBe('0A000');
      expect(r.message).toMatch(message);
    }
  });
});

describe('databaseMismatch', () => {
  const check = (p: Record<string, string>) =>
    databaseMismatch(new Map(Object.entries(p)), 'orders', 'orders-db');
  it('accepts the served database, none, or libpq default (the user name)', () => {
    expect(check({ user: 'agent', database: 'orders' })).toBeUndefined();
    expect(check({ user: 'agent' })).toBeUndefined();
    expect(check({ user: 'agent', database: 'agent' })).toBeUndefined();
  });
  it('refuses another database with 3D000 naming the one it serves', () => {
    expect(check({ user: 'agent', database: 'postgres' })).toEqual({
      code: '3D000',
      message:
        'database "postgres" does not exist here: this listener serves database "orders" of connection orders-db',
    });
  });
});
