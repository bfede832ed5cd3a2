import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GENERATED_BANNER, generateCrdTypes } from './crd-codegen.js';
import { crdDirectory } from './crds.js';
import type { AccessPolicy, AccessRequest, Connection, ConnectionList } from './generated/crds.js';

const committedPath = new URL('./generated/crds.ts', import.meta.url);
const scratch: string[] = [];

afterAll(async () => {
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A scratch copy of crds/ with `edit` applied to one file. */
async function editedCrdDir(file: string, edit: (text: string) => string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'chaperone-crds-'));
  scratch.push(dir);
  await cp(crdDirectory(), dir, { recursive: true });
  const target = path.join(dir, file);
  await writeFile(target, edit(await readFile(target, 'utf8')));
  return dir;
}

describe('generated CRD types', () => {
  it('api/src/generated/crds.ts is up to date with crds/ (run `npm run gen` if this fails)', async () => {
    const committed = await readFile(committedPath, 'utf8');
    const regenerated = await generateCrdTypes(crdDirectory());
    expect(committed.startsWith(GENERATED_BANNER)).toBe(true);
    expect(committed).toBe(regenerated);
  });

  it('is deterministic', async () => {
    expect(await generateCrdTypes(crdDirectory())).toBe(await generateCrdTypes(crdDirectory()));
  });

  it('changes when a CRD changes, so a forgotten regeneration fails the test above', async () => {
    const committed = await readFile(committedPath, 'utf8');
    const dir = await editedCrdDir('chaperone.dev_connections.yaml', (text) =>
      text.replace(
        '                listen:\n',
        '                region:\n                  type: string\n                  maxLength: 63\n                  description: Cloud region of the target.\n                listen:\n',
      ),
    );
    const regenerated = await generateCrdTypes(dir);
    expect(regenerated).not.toBe(committed);
    expect(regenerated).toMatch(/Cloud region of the target\.\s+\*\/\s+region\?: string;/);
  });

  it('refuses a schema that no longer has a path named in NAMED_TYPES', async () => {
    const dir = await editedCrdDir('chaperone.dev_accessrequests.yaml', (text) =>
      text.replace('                requester:\n', '                requestedBy:\n'),
    );
    await expect(generateCrdTypes(dir)).rejects.toThrow(/spec\.requester/);
  });

  it('refuses Condition schemas that differ between CRDs', async () => {
    const dir = await editedCrdDir('chaperone.dev_connections.yaml', (text) =>
      text.replace('maxLength: 32768', 'maxLength: 1000'),
    );
    await expect(generateCrdTypes(dir)).rejects.toThrow(/Condition/);
  });

  it('types real objects (checked by tsc)', () => {
    const connection: Connection = {
      apiVersion: 'chaperone.dev/v1alpha1',
      kind: 'Connection',
      metadata: { name: 'orders-db' },
      spec: {
        type: 'postgres',
        endpoint: { host: '127.0.0.1', port: 5432, tls: { mode: 'verify-full' } },
        listen: { port: 15432 },
        credentials: {
          postgres: { adminSecretRef: { name: 'orders-db-admin' }, grantRoles: ['orders_reader'] },
        },
      },
    };
    const list: ConnectionList = {
      apiVersion: 'chaperone.dev/v1alpha1',
      kind: 'ConnectionList',
      metadata: {},
      items: [connection],
    };
    const policy: AccessPolicy = {
      apiVersion: 'chaperone.dev/v1alpha1',
      kind: 'AccessPolicy',
      metadata: { name: 'p' },
      spec: {
        subjects: [{ kind: 'Group', name: 'dba' }],
        connections: { selector: { matchLabels: { team: 'orders' } } },
        rules: [{ name: 'read', action: 'allow', postgres: { operations: ['read'] } }],
        masking: { columns: [{ column: 'public.customers.email', strategy: 'null' }] },
      },
    };
    const request: AccessRequest = {
      apiVersion: 'chaperone.dev/v1alpha1',
      kind: 'AccessRequest',
      metadata: { name: 'r' },
      spec: {
        requester: { serviceAccount: { namespace: 'default', name: 'agent' } },
        connection: 'orders-db',
        policy: 'p',
        operation: { type: 'postgres', text: 'DELETE FROM public.orders' },
        expiresAt: '2030-01-01T00:00:00Z',
      },
      status: { phase: 'Approved', decision: { verdict: 'Approved', by: 'alice' } },
    };
    expect([list.items.length, policy.spec.rules.length, request.status?.phase]).toEqual([1, 1, 'Approved']);
  });
});
