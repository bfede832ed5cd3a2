import { startPostgres, type TestPostgres } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectUpstream, UpstreamError } from './upstream.js';

// The gateway's own upstream login, against real servers configured for each method.
describe.each(['scram-sha-256', 'md5', 'password'] as const)('upstream login with %s', (auth) => {
  let db: TestPostgres;
  beforeAll(async () => {
    db = await startPostgres({ auth });
    // A role whose stored password fits the method (md5 needs an md5-stored password to be md5 on the wire).
    await db.psql(
      `SET password_encryption = '${auth === 'md5' ? 'md5' : 'scram-sha-256'}'; CREATE ROLE agent_login LOGIN PASSWORD 's3cret-pw'`,
    );
  });
  afterAll(async () => {
    await db?.stop();
  });
  const target = () => ({
    host: '127.0.0.1',
    port: db.port,
    database: 'postgres',
    tls: { mode: 'disable' as const },
  });

  it('logs in and reaches ReadyForQuery with the server parameters', async () => {
    const up = await connectUpstream(
      target(),
      { username: 'agent_login', password: 's3cret-pw', description: 'test' },
      { application_name: 'chaperone-test' },
    );
    try {
      const params = Object.fromEntries(up.parameters);
      expect(params.application_name).toBe('chaperone-test');
      expect(params.server_version).toMatch(/^1[5-9]/);
      expect(up.backendKey.processId).toBeGreaterThan(0);
    } finally {
      up.socket.destroy();
    }
  });

  it('fails with the server error for a wrong password', async () => {
    const err = await connectUpstream(
      target(),
      { username: 'agent_login', password: 'wrong', description: 'test' },
      {},
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamError);
    expect((err as UpstreamError).sqlState).toBe('28P01');
    expect((err as Error).message).toContain('password authentication failed');
  });
});
