// Secret values never reach the agent, whichever path it takes to a Secret: real kubectl and raw
// requests through the gateway to a real API server. Each test first proves (as admin, directly)
// that the value is really there, so a passing test cannot be an empty response.

import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAST_APPLIED_ANNOTATION, REDACTED, REDACTED_DATA } from './secret-redaction.js';
import { type KubeFixture, startKubeFixture } from './test-fixture.js';

let fx: KubeFixture;
const NS = 'sec';
const VALUE = 'hunter2';
const B64 = Buffer.from(VALUE).toString('base64'); // aHVudGVyMg==

function leaks(text: string): boolean {
  return text.includes(VALUE) || text.includes(B64.slice(0, 8));
}

async function adminSees(name: string): Promise<string> {
  const r = await fx.cp.kubectl(['-n', NS, 'get', 'secret', name, '-o', 'json']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

function raw(
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${fx.gateway.url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          type: String(res.headers['content-type']),
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  fx = await startKubeFixture();
  await fx.cp.kubectl(['create', 'namespace', NS]);
  for (const name of ['s1', 's2', 's3']) {
    const r = await fx.cp.kubectl([
      '-n',
      NS,
      'create',
      'secret',
      'generic',
      name,
      `--from-literal=password=${VALUE}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
  }
  expect(leaks(await adminSees('s1'))).toBe(true);
});
afterAll(async () => {
  await fx?.stop();
});

describe('Secret redaction through the gateway', () => {
  it('get -o yaml / -o json: keys kept, values replaced', async () => {
    const y = await fx.kubectl(['-n', NS, 'get', 'secret', 's1', '-o', 'yaml']);
    expect(y.code, y.stderr).toBe(0);
    expect(y.stdout).toContain(`password: ${REDACTED_DATA}`);
    expect(leaks(y.stdout)).toBe(false);
    const j = await fx.kubectl(['-n', NS, 'get', 'secrets', '-o', 'json']);
    expect(j.code, j.stderr).toBe(0);
    const list = JSON.parse(j.stdout) as { items: Array<{ data: Record<string, string> }> };
    expect(list.items.length).toBeGreaterThanOrEqual(3);
    for (const item of list.items) expect(item.data.password).toBe(REDACTED_DATA);
    expect(leaks(j.stdout)).toBe(false);
  });

  it('paged lists (--chunk-size=1) and jsonpath', async () => {
    const r = await fx.kubectl(['-n', NS, 'get', 'secrets', '--chunk-size=1', '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect(leaks(r.stdout)).toBe(false);
    const pages = fx.records.filter(
      (e) => e.attributes.resource === 'secrets' && e.attributes.verb === 'list',
    );
    expect(pages.length).toBeGreaterThanOrEqual(3);
    const jp = await fx.kubectl(['-n', NS, 'get', 'secret', 's1', '-o', 'jsonpath={.data.password}']);
    expect(jp.stdout).toBe(REDACTED_DATA);
  });

  it('kubectl get -w (JSON and Table watches) redacts each event as it arrives', async () => {
    const json = fx.spawnKubectl(['-n', NS, 'get', 'secret', 's2', '-w', '-o', 'json']);
    const table = fx.spawnKubectl(['-n', NS, 'get', 'secrets', '-w']);
    await json.waitForStdout(/"name": "s2"/);
    await table.waitForStdout(/s2\s+Opaque/);
    const p = await fx.cp.kubectl([
      '-n',
      NS,
      'patch',
      'secret',
      's2',
      '-p',
      `{"stringData":{"again":"${VALUE}"}}`,
    ]);
    expect(p.code, p.stderr).toBe(0);
    await json.waitForStdout(/"again"/);
    await table.waitForStdout(/s2\s+Opaque\s+2/);
    expect(leaks(json.stdout())).toBe(false);
    await json.stop();
    await table.stop();
  });

  it('Table with includeObject=Object, PartialObjectMetadata, and protobuf/CBOR asked for', async () => {
    const table = await raw(`/api/v1/namespaces/${NS}/secrets?includeObject=Object`, {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io',
    });
    expect(table.status).toBe(200);
    expect(JSON.parse(table.body)).toMatchObject({ kind: 'Table' });
    expect(table.body).toContain(REDACTED_DATA);
    expect(leaks(table.body)).toBe(false);
    for (const accept of [
      'application/vnd.kubernetes.protobuf',
      'application/cbor',
      'application/yaml',
      'application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1',
    ]) {
      const r = await raw(`/api/v1/namespaces/${NS}/secrets`, { accept, 'accept-encoding': 'gzip' });
      expect(r.status, accept).toBe(200);
      expect(r.type, accept).toMatch(/^application\/json/);
      expect(leaks(r.body), accept).toBe(false);
    }
  });

  it('client-side apply: the echoed object and the last-applied annotation are redacted', async () => {
    const manifest = JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'applied', namespace: NS },
      stringData: { token: VALUE },
    });
    const a = await fx.kubectl(['apply', '-f', '-', '-o', 'yaml'], { input: manifest });
    expect(a.code, a.stderr).toBe(0);
    expect(leaks(a.stdout)).toBe(false);
    const direct = JSON.parse(await adminSees('applied')) as {
      metadata: { annotations: Record<string, string> };
    };
    expect(direct.metadata.annotations[LAST_APPLIED_ANNOTATION]).toContain(VALUE);
    const g = await fx.kubectl(['-n', NS, 'get', 'secret', 'applied', '-o', 'json']);
    const obj = JSON.parse(g.stdout) as { metadata: { annotations: Record<string, string> } };
    const lastApplied = JSON.parse(obj.metadata.annotations[LAST_APPLIED_ANNOTATION]!) as {
      stringData: Record<string, string>;
    };
    expect(lastApplied.stringData.token).toBe(REDACTED);
    expect(leaks(g.stdout)).toBe(false);
    const record = fx.records.find(
      (e) => e.attributes.verb === 'create' && e.attributes.resource === 'secrets',
    );
    expect(record?.requestBody).toBeDefined();
    expect(leaks(record!.requestBody!)).toBe(false);
  });

  it('server-side apply, create, patch and delete echoes are redacted', async () => {
    const manifest = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ssa\n  namespace: ${NS}\nstringData:\n  token: ${VALUE}\n`;
    const ssa = await fx.kubectl(['apply', '--server-side', '-f', '-', '-o', 'yaml'], { input: manifest });
    expect(ssa.code, ssa.stderr).toBe(0);
    expect(ssa.stdout).toContain('name: ssa');
    expect(leaks(ssa.stdout)).toBe(false);
    expect(leaks(await adminSees('ssa'))).toBe(true);
    const c = await fx.kubectl([
      '-n',
      NS,
      'create',
      'secret',
      'generic',
      'echo',
      `--from-literal=k=${VALUE}`,
      '-o',
      'json',
    ]);
    expect(c.code, c.stderr).toBe(0);
    expect(leaks(c.stdout)).toBe(false);
    const p = await fx.kubectl([
      '-n',
      NS,
      'patch',
      'secret',
      'echo',
      '-p',
      `{"stringData":{"k2":"${VALUE}"}}`,
      '-o',
      'json',
    ]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain('"k2"');
    expect(leaks(p.stdout)).toBe(false);
    const d = await raw(`/api/v1/namespaces/${NS}/secrets/echo`, {}, 'DELETE');
    expect(d.status).toBe(200);
    expect(d.body).toContain('"echo"');
    expect(leaks(d.body)).toBe(false);
    for (const e of fx.records.filter((r) => r.attributes.resource === 'secrets' && r.requestBody)) {
      expect(leaks(e.requestBody!)).toBe(false);
    }
  });

  it('legacy /watch/ path and deletecollection (which answers with the deleted Secrets)', async () => {
    const w = await raw(`/api/v1/watch/namespaces/${NS}/secrets?timeoutSeconds=1`);
    expect(w.status).toBe(200);
    const events = w.body.trim().split('\n');
    expect(events.length).toBeGreaterThanOrEqual(3);
    expect(leaks(w.body)).toBe(false);
    expect(w.body).toContain(REDACTED_DATA);
    const d = await raw(`/api/v1/namespaces/${NS}/secrets`, {}, 'DELETE');
    expect(d.status).toBe(200);
    expect(JSON.parse(d.body)).toMatchObject({ kind: 'SecretList' });
    expect(d.body).toContain(REDACTED_DATA);
    expect(leaks(d.body)).toBe(false);
    expect(fx.records.at(-1)?.attributes.verb).toBe('deletecollection');
  });
});
