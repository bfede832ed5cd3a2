import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayHarness, startGatewayHarness } from './gateway-test-harness.js';
import { parseAuthorizedKey } from './ssh-keys.js';

const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.test-token.sig';

describe('SSH gateway: agent login with a password (an OIDC ID token)', () => {
  let h: GatewayHarness;
  beforeAll(async () => {
    h = await startGatewayHarness({
      gateway: {
        allowPodIdentity: false,
        verifyPassword: async (_user: string, password: string) =>
          password === TOKEN ? { sub: 'alice', groups: ['ops'] } : undefined,
      },
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  function login(password?: string, username = 'alice', gw: GatewayHarness = h): Promise<ssh2.Client> {
    const pinned = parseAuthorizedKey(gw.gatewayHostKey).blob;
    const port = gw.gateway.port;
    return new Promise((resolve, reject) => {
      const c = new ssh2.Client();
      c.once('ready', () => resolve(c));
      c.once('error', reject);
      c.connect({
        host: h.gateway.host,
        port,
        username,
        ...(password === undefined ? {} : { password }),
        hostVerifier: (k: Buffer) => k.equals(pinned),
      });
    });
  }

  it('accepts a token that verifyPassword accepts and records the verified claims, never the token', async () => {
    const c = await login(TOKEN);
    c.end();
    const start = h.events.find((e) => e.type === 'session.start');
    expect(start?.type === 'session.start' && start.identity).toMatchObject({
      method: 'password',
      username: 'alice',
      verified: { sub: 'alice', groups: ['ops'] },
    });
    expect(JSON.stringify(h.events)).not.toContain('test-token');
  });

  it('refuses a wrong token, and `none` when the pod identity alone is not enough', async () => {
    await expect(login('wrong')).rejects.toThrow(/authentication methods failed/);
    await expect(login()).rejects.toThrow(/authentication methods failed/);
    const ssh = await h.client.ssh([h.client.destination, 'true']);
    expect(ssh.code).toBe(255);
    expect(ssh.stderr).toContain('Permission denied');
  });

  it('with the pod identity allowed, user `oidc` still has to present a token', async () => {
    const open = await startGatewayHarness({
      gateway: {
        verifyPassword: async (_u: string, p: string) => (p === TOKEN ? { sub: 'bob' } : undefined),
      },
    });
    try {
      const pod = await login(undefined, 'deploy', open);
      pod.end();
      await expect(login(undefined, 'oidc', open)).rejects.toThrow(/authentication methods failed/);
      const withToken = await login(TOKEN, 'oidc', open);
      withToken.end();
    } finally {
      await open.stop();
    }
  });
});
