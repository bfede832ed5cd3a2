import { describe, expect, it } from 'vitest';
import { DB_ENV, parseCliArgs, UsageError } from './cli-options.js';

describe('parseCliArgs', () => {
  it('parses serve with defaults that listen on loopback only', () => {
    const o = parseCliArgs(['serve', '--db', 'sqlite:/tmp/c.db', '--ingest-token-file', '/t']);
    expect(o).toMatchObject({
      command: 'serve',
      host: '127.0.0.1',
      port: 8080,
      kubeTokenReview: false,
      tokenAudience: 'chaperone-collector',
      auditorGroups: [],
      retentionIntervalMs: 3_600_000,
      maxBodyBytes: 8 * 1024 * 1024,
      maxBatchEvents: 1000,
    });
  });

  it('parses the in-cluster shape: TokenReview, OIDC auditors, retention', () => {
    const o = parseCliArgs([
      'serve',
      '--db',
      'postgres://u:p@db/collector',
      '--kube-token-review',
      '--oidc-issuer',
      'https://idp',
      '--oidc-audience',
      'chaperone',
      '--auditor-group',
      'auditors,security',
      '--auditor-group',
      'sre',
      '--retention',
      'orders-db=30d,*=90d',
      '--host',
      '0.0.0.0',
    ]);
    expect(o).toMatchObject({
      kubeTokenReview: true,
      oidc: { issuer: 'https://idp', audience: 'chaperone' },
      auditorGroups: ['auditors', 'security', 'sre'],
      retention: { perConnection: new Map([['orders-db', 30 * 86_400_000]]), defaultMs: 90 * 86_400_000 },
      host: '0.0.0.0',
    });
  });

  it('refuses configurations that would fail open or be ambiguous', () => {
    const bad = (args: string[], message: RegExp) => {
      expect(() => parseCliArgs(args)).toThrow(UsageError);
      expect(() => parseCliArgs(args)).toThrow(message);
    };
    bad(['serve', '--db', 'sqlite:/x'], /sidecars must authenticate/);
    bad(['serve', '--ingest-token-file', '/t'], /--db is required/);
    bad(
      ['serve', '--db', 'mysql://x', '--ingest-token-file', '/t'],
      /--db must be sqlite:PATH or a postgres:\/\/ URL/,
    );
    bad(
      [
        'serve',
        '--db',
        'sqlite:/x',
        '--ingest-token-file',
        '/t',
        '--oidc-issuer',
        'https://i',
        '--oidc-audience',
        'a',
      ],
      /needs --auditor-group/,
    );
    bad(
      ['serve', '--db', 'sqlite:/x', '--ingest-token-file', '/t', '--retention', 'x=3 days'],
      /invalid duration/,
    );
    bad(['serve', '--db', 'sqlite:/x', '--ingest-token-file', '/t', '--port', 'http'], /--port must be/);
    bad(['serve', '--db', 'sqlite:/x', '--ingest-token-file', '/t', '--bogus'], /Unknown option '--bogus'/);
    bad(['verify', '--db', 'sqlite:/x', '--session', 's', '--from', '2025-01-01'], /not both/);
    bad(['verify', '--db', 'sqlite:/x', '--from', 'last week'], /--from: not a date/);
    bad(['frobnicate'], /unknown command frobnicate/);
  });

  it('parses verify and migrate', () => {
    expect(parseCliArgs(['verify', '--db', 'sqlite:/x', '--from', '2025-01-01', '--json'])).toEqual({
      command: 'verify',
      db: 'sqlite:/x',
      session: undefined,
      from: new Date('2025-01-01T00:00:00Z'),
      to: undefined,
      abandonedAfterMs: 3_600_000,
      json: true,
    });
    expect(parseCliArgs(['verify', '--db', 'sqlite:/x', '--abandoned-after', '15m'])).toMatchObject({
      abandonedAfterMs: 900_000,
    });
    expect(parseCliArgs(['migrate', '--db', 'sqlite:/x'])).toEqual({ command: 'migrate', db: 'sqlite:/x' });
  });
});

describe('the database URL from the environment', () => {
  it('uses CHAPERONE_COLLECTOR_DB when --db is absent, and --db over it', () => {
    const before = process.env[DB_ENV];
    process.env[DB_ENV] = 'postgres://collector:pw@db:5432/chaperone';
    try {
      expect(parseCliArgs(['migrate'])).toEqual({
        command: 'migrate',
        db: 'postgres://collector:pw@db:5432/chaperone',
      });
      expect(parseCliArgs(['migrate', '--db', 'sqlite:/x'])).toEqual({ command: 'migrate', db: 'sqlite:/x' });
      delete process.env[DB_ENV];
      expect(() => parseCliArgs(['migrate'])).toThrow(/--db is required.*CHAPERONE_COLLECTOR_DB/);
    } finally {
      if (before === undefined) delete process.env[DB_ENV];
      else process.env[DB_ENV] = before;
    }
  });
});
