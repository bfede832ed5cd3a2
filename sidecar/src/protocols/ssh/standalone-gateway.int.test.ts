// The ssh Connection end to end in a standalone sidecar: real OpenSSH client → gateway → real sshd
// that trusts only the test user CA (whose private key is the Connection's CA Secret). Policy,
// guardrails, approval from the command line, and the JSON-lines recording.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  makeWorkDir,
  type OpenSshClient,
  openSshClient,
  repoPath,
  run,
  startOidcIssuer,
  startSshd,
  type TestOidcIssuer,
  type TestSshd,
  type WorkDir,
} from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningStandaloneSidecar, runStandalone } from '../../modes/standalone.js';
import { gatewayHostKey, writeSshAgentConfig } from './agent-config.js';

let sshd: TestSshd;
let work: WorkDir;
let sidecar: RunningStandaloneSidecar;
let client: OpenSshClient;
let noCaClient: OpenSshClient;
let adminUrl = '';
let idp: TestOidcIssuer;

const indent = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');

function configYaml(caKey: string): string {
  const connection = (name: string, secret: string) => `
apiVersion: chaperone.dev/v1alpha1
kind: Connection
metadata: { name: ${name} }
spec:
  type: ssh
  endpoint: { host: 127.0.0.1, port: ${sshd.port}, hostKeys: ["${sshd.hostPublicKey}"] }
  listen: { port: 2222 }
  credentials:
    ssh: { caSecretRef: { name: ${secret} }, principals: [${sshd.loginUser}], ttl: 2m }
---`;
  return `${connection('web-host', 'web-user-ca')}${connection('no-ca-host', 'missing-ca')}
apiVersion: v1
kind: Secret
metadata: { name: web-user-ca }
stringData:
  ca: |
${indent(caKey)}
---
apiVersion: chaperone.dev/v1alpha1
kind: AccessPolicy
metadata: { name: ops-agents }
spec:
  subjects: [{ kind: ServiceAccount, namespace: agents, name: ops-agent }]
  connections: { names: [web-host, no-ca-host] }
  rules:
    - { name: status, action: allow, ssh: { operations: [exec], commands: ["uptime", "printf *", "rm *"] } }
    - { name: service-restarts, action: approve, reason: restarts need an operator, ssh: { operations: [exec], commands: ["sudo systemctl restart *"] } }
  guardrails:
    - { detector: rm-rf, action: deny }
  approval:
    approvers: { groups: [ops] }
    timeout: 30s
`;
}

beforeAll(async () => {
  sshd = await startSshd();
  idp = await startOidcIssuer({ clientId: 'chaperone' });
  work = await makeWorkDir('ssh-standalone');
  await writeFile(work.file('config.yaml'), configYaml(await readFile(sshd.userCaKeyPath, 'utf8')));
  sidecar = await runStandalone({
    configDir: work.path,
    serviceAccount: { namespace: 'agents', name: 'ops-agent' },
    recordingsDir: work.file('rec'),
    adminPort: 0,
    listenPorts: { 'web-host': 0, 'no-ca-host': 0 },
    oidc: { issuers: [{ issuer: idp.issuer, audience: 'chaperone' }], require: false, tokenUser: 'oidc' },
    log: () => {},
  });
  adminUrl = `http://127.0.0.1:${sidecar.admin.port}`;
  const pinned = (name: string) => {
    const gw = sidecar.gateways.get(name);
    return { host: '127.0.0.1', port: gw?.port ?? 0, hostPublicKey: (gw && gatewayHostKey(gw)) ?? '' };
  };
  client = await openSshClient(pinned('web-host'));
  noCaClient = await openSshClient(pinned('no-ca-host'));
}, 60_000);

afterAll(async () => {
  await client?.remove();
  await noCaClient?.remove();
  await sidecar?.stop();
  await sshd?.stop();
  await idp?.stop();
  await work?.remove();
});

type Recorded = { type: string; data: Record<string, unknown> };
async function recorded(): Promise<{ events: Recorded[]; raw: string }> {
  const dir = work.file('rec');
  const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.jsonl'));
  const raw = (await Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')))).join('');
  const events = raw
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Recorded);
  return { events, raw };
}

describe('ssh Connection in a standalone sidecar', () => {
  it('runs an allowed exec on the target with a certificate signed from the CA Secret', async () => {
    const r = await client.ssh([client.destination, 'uptime']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/load average/);
  });

  it('denies rm -rf by guardrail with exit 126 and a clear stderr line; nothing runs', async () => {
    const r = await client.ssh([client.destination, 'rm -rf /tmp/x']);
    expect(r.code).toBe(126);
    expect(r.stderr).toMatch(/chaperone: denied: .*recursive forced delete/);
  });

  it('denies what no rule allows', async () => {
    const r = await client.ssh([client.destination, 'id']);
    expect(r.code).toBe(126);
    expect(r.stderr).toContain('chaperone: denied');
  });

  it('holds sudo systemctl restart for approval, then runs it once approved from the command line', async () => {
    const child = client.spawn('ssh', [client.destination, 'sudo systemctl restart x']);
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    for (let i = 0; i < 100 && !/ar-web-host-[0-9a-f]+/.test(stderr); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(stderr).toContain('chaperone: waiting for approval of access request');
    expect(stderr).toContain('restarts need an operator');
    const name = /(ar-web-host-[0-9a-f]+)/.exec(stderr)?.[1] ?? '';
    const cli = (...args: string[]) =>
      run(process.execPath, [
        repoPath('sidecar', 'dist', 'cli.js'),
        'approvals',
        ...args,
        '--admin',
        adminUrl,
      ]);
    expect((await cli('list')).stdout).toContain('sudo systemctl restart x');
    const approved = await cli('approve', name, '--by', 'ops-olga');
    expect(approved.code).toBe(0);
    const code = await exited;
    // Approved: it reached the target (whose sudo refuses a non-interactive password prompt), not the gateway's 126.
    expect(code).not.toBe(126);
    expect(code).not.toBe(255);
  }, 30_000);

  it("ends a held command with exit 126 and the approver's reason when the request is denied", async () => {
    const child = client.spawn('ssh', [client.destination, 'sudo systemctl restart y']);
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    for (let i = 0; i < 100 && !/ar-web-host-[0-9a-f]+/.test(stderr); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(stderr).toContain('chaperone-sidecar approvals approve');
    const name = /(ar-web-host-[0-9a-f]+)/.exec(stderr)?.[1] ?? '';
    const denied = await run(process.execPath, [
      repoPath('sidecar', 'dist', 'cli.js'),
      'approvals',
      'deny',
      name,
      '--reason',
      'not now',
      '--by',
      'ops-olga',
      '--admin',
      adminUrl,
    ]);
    expect(denied.code).toBe(0);
    expect(await exited).toBe(126);
    expect(stderr).toMatch(
      /chaperone: denied: access request ar-web-host-[0-9a-f]+ was denied by ops-olga: not now/,
    );
  }, 30_000);

  it('reaches the Connection by name with the ssh_config and known_hosts the sidecar writes', async () => {
    const gw = sidecar.gateways.get('web-host');
    const hostKeyLine = gw ? gatewayHostKey(gw) : undefined;
    expect(hostKeyLine).toMatch(/^ssh-ed25519 /);
    await writeSshAgentConfig(
      [{ name: 'web-host', port: gw?.port ?? 0, hostKeyLine: hostKeyLine ?? '' }],
      client.dir.path,
    );
    const r = await client.runAsClient('ssh', [
      '-F',
      client.dir.file('ssh_config'),
      '-o',
      'BatchMode=yes',
      'web-host',
      'uptime',
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/load average/);
    // A gateway presenting another key is refused: the pin is real.
    await writeSshAgentConfig(
      [{ name: 'web-host', port: gw?.port ?? 0, hostKeyLine: sshd.hostPublicKey }],
      client.dir.path,
    );
    const wrong = await client.runAsClient('ssh', [
      '-F',
      client.dir.file('ssh_config'),
      '-o',
      'BatchMode=yes',
      'web-host',
      'uptime',
    ]);
    expect(wrong.code).toBe(255);
    expect(wrong.stderr).toMatch(/Host key verification failed|HOST IDENTIFICATION HAS CHANGED/);
  });

  it('takes an OIDC ID token as the password of user oidc: the session acts for its user', async () => {
    const login = async (token: string) => {
      const askpass = client.dir.file('askpass');
      await client.runAsClient('sh', [
        '-c',
        `printf '#!/bin/sh\\necho %s\\n' '${token}' > ${askpass} && chmod 700 ${askpass}`,
      ]);
      return client.runAsClient('env', [
        `SSH_ASKPASS=${askpass}`,
        'SSH_ASKPASS_REQUIRE=force',
        'ssh',
        '-o',
        'BatchMode=no',
        '-o',
        'PreferredAuthentications=password',
        ...client.options,
        '-p',
        String(client.port),
        'oidc@127.0.0.1',
        'uptime',
      ]);
    };
    const ok = await login(await idp.mint({ subject: 'alice', groups: ['ops'] }));
    expect(ok.stdout).toMatch(/load average/);
    const forged = await login(await idp.mint({ subject: 'mallory', audience: 'someone-else' }));
    expect(forged.code).toBe(255);
    expect(forged.stdout).toBe('');
    const { events } = await recorded();
    const starts = events.filter((e) => e.type === 'session.start') as unknown as {
      identity: { user?: string };
    }[];
    expect(starts.map((e) => e.identity.user)).toContain('alice');
    expect(starts.map((e) => e.identity.user)).not.toContain('mallory');
  });

  it('fails closed with exit 255 and a clear message when the CA Secret is missing', async () => {
    const r = await noCaClient.ssh([noCaClient.destination, 'uptime']);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/SSH CA Secret missing-ca .*not in the config folder/);
    const { events } = await recorded();
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'denied',
        data: expect.objectContaining({
          operation: 'upstream login',
          reason: expect.stringContaining('missing-ca'),
        }),
      }),
    );
  });

  it('records commands with exit status, denials and approvals, and no key or certificate', async () => {
    // A private key printed by an allowed command is redacted from the recording (not from the stream).
    const shown = await client.ssh([
      '-tt',
      client.destination,
      "printf '%s%s\\n' '-----BEGIN OPENSSH ' 'PRIVATE KEY-----'",
    ]);
    expect(shown.stdout).toContain('-----BEGIN OPENSSH PRIVATE KEY-----');
    await expect
      .poll(async () => (await recorded()).events.filter((e) => e.type === 'session.end').length)
      .toBeGreaterThanOrEqual(9);
    const { events, raw } = await recorded();
    const commands = events.filter((e) => e.type === 'command').map((e) => e.data);
    expect(commands).toContainEqual(
      expect.objectContaining({ text: 'uptime', decision: 'allowed', exitStatus: 0 }),
    );
    expect(commands).toContainEqual(
      expect.objectContaining({
        text: 'sudo systemctl restart x',
        decision: 'approved',
        exitStatus: expect.any(Number),
      }),
    );
    const denied = events.filter((e) => e.type === 'denied').map((e) => e.data);
    expect(denied).toContainEqual(expect.objectContaining({ operation: 'rm -rf /tmp/x' }));
    expect(events.filter((e) => e.type === 'approval.requested')).toHaveLength(2);
    const decided = events.filter((e) => e.type === 'approval.decided').map((e) => e.data);
    expect(decided).toContainEqual(expect.objectContaining({ verdict: 'approved', by: 'ops-olga' }));
    expect(decided).toContainEqual(expect.objectContaining({ verdict: 'denied', by: 'ops-olga' }));
    expect(events.filter((e) => e.type === 'credential.issued').length).toBeGreaterThan(0);
    expect(raw).not.toContain('-----BEGIN OPENSSH PRIVATE KEY-----');
    const caKey = await readFile(sshd.userCaKeyPath, 'utf8');
    expect(raw).not.toContain(caKey.split('\n')[1]);
    expect(raw).not.toContain('-cert-v01@openssh.com');
    expect(raw).toContain('redacted, contains private-key');
  }, 30_000);
});
