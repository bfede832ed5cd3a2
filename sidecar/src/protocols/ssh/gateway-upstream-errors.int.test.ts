import { afterEach, describe, expect, it } from 'vitest';
import { type GatewayHarness, startGatewayHarness } from './gateway-test-harness.js';
import { UPSTREAM_FAILED_EXIT_STATUS } from './session-channel.js';
import { generateSessionKeyPair } from './ssh-keys.js';

describe('SSH gateway: the agent sees why the target could not be used', () => {
  let h: GatewayHarness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('names the unexpected host key and where to pin it; nothing runs', async () => {
    h = await startGatewayHarness({ hostKeys: () => [generateSessionKeyPair().publicKeyLine] });
    const res = await h.client.ssh([h.client.destination, 'echo ran']);
    expect(res.code).toBe(UPSTREAM_FAILED_EXIT_STATUS);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(
      /^chaperone: host key verification failed for 127\.0\.0\.1:\d+: it presented ssh-ed25519 SHA256:/,
    );
    expect(res.stderr).toContain('spec.endpoint.hostKeys');
  });

  it('refuses an expired certificate with its expiry time', async () => {
    h = await startGatewayHarness({ certificateValidity: '-10m:-5m' });
    const res = await h.client.ssh([h.client.destination, 'echo ran']);
    expect(res.code).toBe(UPSTREAM_FAILED_EXIT_STATUS);
    expect(res.stderr).toMatch(/^chaperone: the SSH certificate expired at \d{4}-/);
  });
});
