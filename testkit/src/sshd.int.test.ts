import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './run.js';
import { sshClientArgs, startSshd, type TestSshd } from './sshd.js';

describe('OpenSSH sshd harness', () => {
  let sshd: TestSshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it('runs a command for a short-lived certificate signed by the test user CA', async () => {
    const key = await sshd.newUserKey('agent');
    const cert = await sshd.signUserKey(key, { validity: '-1m:+2m', identity: 'agent-1' });
    const inspect = await run('ssh-keygen', ['-L', '-f', cert]);
    expect(inspect.stdout).toContain('Type: ssh-ed25519-cert-v01@openssh.com user certificate');
    expect(inspect.stdout).toContain(sshd.loginUser);
    const res = await run('ssh', [...sshClientArgs(sshd, key), 'id -un; echo "$((6*7))"']);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout.trim().split('\n')).toEqual([sshd.loginUser, '42']);
  });

  it('refuses a plain key that no CA signed', async () => {
    const key = await sshd.newUserKey('plain');
    const res = await run('ssh', [...sshClientArgs(sshd, key), 'true']);
    expect(res.code).toBe(255);
    expect(res.stderr).toContain('Permission denied (publickey)');
  });

  it('refuses an expired certificate and one for another principal', async () => {
    const expiredKey = await sshd.newUserKey('expired');
    await sshd.signUserKey(expiredKey, { validity: '-10m:-5m' });
    const expired = await run('ssh', [...sshClientArgs(sshd, expiredKey), 'true']);
    expect(expired.code).toBe(255);
    expect(expired.stderr).toContain('Permission denied');

    const otherKey = await sshd.newUserKey('other-principal');
    await sshd.signUserKey(otherKey, { principals: ['somebody-else'] });
    const other = await run('ssh', [...sshClientArgs(sshd, otherKey), 'true']);
    expect(other.code).toBe(255);
    expect(other.stderr).toContain('Permission denied');
  });
});
