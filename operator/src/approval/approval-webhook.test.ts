import type { AccessPolicy, AccessRequest } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import type { AdmissionRequest } from '../admission/admission-review.js';
import { createApprovalHandler } from './approval-webhook.js';
import { applyJsonPatch } from './json-patch.test-support.js';

const OPERATOR = 'system:serviceaccount:chaperone-system:chaperone-operator';
const NOW = new Date('2030-01-01T12:00:00Z');

const stored: AccessRequest = {
  apiVersion: 'chaperone.dev/v1alpha1',
  kind: 'AccessRequest',
  metadata: { name: 'r1', namespace: 'team-a' },
  spec: {
    requester: { serviceAccount: { namespace: 'team-a', name: 'agent' } },
    connection: 'db',
    policy: 'p1',
    operation: { type: 'postgres', text: 'DELETE FROM t' },
    expiresAt: '2030-01-01T12:10:00Z',
  },
  status: { phase: 'Pending' },
};
const decided: AccessRequest = { ...stored, status: { phase: 'Pending', decision: { verdict: 'Approved' } } };

const policy = {
  apiVersion: 'chaperone.dev/v1alpha1',
  kind: 'AccessPolicy',
  metadata: { name: 'p1', namespace: 'team-a' },
  spec: { approval: { approvers: { groups: ['dba'] } } },
} as AccessPolicy;

function review(overrides: Partial<AdmissionRequest> = {}): AdmissionRequest {
  return {
    uid: 'u1',
    kind: { group: 'chaperone.dev', version: 'v1alpha1', kind: 'AccessRequest' },
    resource: { group: 'chaperone.dev', version: 'v1alpha1', resource: 'accessrequests' },
    subResource: 'status',
    name: 'r1',
    namespace: 'team-a',
    operation: 'UPDATE',
    userInfo: { username: 'alice', groups: ['dba'] },
    object: decided,
    oldObject: stored,
    ...overrides,
  };
}

function handler(lookups: Array<[string, string]> = [], found: AccessPolicy | null = policy) {
  return createApprovalHandler({
    lookupPolicy: async (namespace, name) => {
      lookups.push([namespace, name]);
      return found ?? undefined;
    },
    operatorUsernames: [OPERATOR],
    now: () => NOW,
  });
}

describe('createApprovalHandler', () => {
  it('looks up spec.policy in the request namespace and stamps the decision', async () => {
    const lookups: Array<[string, string]> = [];
    const verdict = await handler(lookups)(review());
    expect(lookups).toEqual([['team-a', 'p1']]);
    expect(verdict.allowed).toBe(true);
    const after = applyJsonPatch(decided, verdict.allowed ? (verdict.patch ?? []) : []);
    expect(after.status).toEqual({
      phase: 'Approved',
      decision: { verdict: 'Approved', by: 'alice', groups: ['dba'], at: '2030-01-01T12:00:00Z' },
    });
  });

  it('accepts a synchronous lookup (an informer cache)', async () => {
    const h = createApprovalHandler({ lookupPolicy: () => policy, operatorUsernames: [], now: () => NOW });
    expect((await h(review())).allowed).toBe(true);
  });

  it('uses the real clock when none is given: an old expiresAt is expired', async () => {
    const h = createApprovalHandler({ lookupPolicy: () => policy, operatorUsernames: [] });
    const old = { ...stored, spec: { ...stored.spec, expiresAt: '2001-01-01T00:00:00Z' } };
    const verdict = await h(review({ oldObject: old, object: { ...old, status: decided.status } }));
    expect(verdict).toMatchObject({ allowed: false, code: 403, message: expect.stringContaining('expired') });
  });

  it('a missing policy is refused, not an error', async () => {
    const verdict = await handler([], null)(review());
    expect(verdict).toMatchObject({ allowed: false, code: 403 });
    expect(verdict.allowed ? '' : verdict.message).toMatch(/AccessPolicy p1 no longer exists/);
  });

  it('never looks the policy up for the operator (a lookup failure must not block it)', async () => {
    const lookups: Array<[string, string]> = [];
    const verdict = await handler(lookups)(review({ userInfo: { username: OPERATOR } }));
    expect(verdict).toEqual({ allowed: true });
    expect(lookups).toEqual([]);
  });

  it('propagates a lookup failure, which the server turns into a refusal (fail closed)', async () => {
    const h = createApprovalHandler({
      lookupPolicy: async () => {
        throw new Error('cache not synced');
      },
      operatorUsernames: [],
    });
    await expect(h(review())).rejects.toThrow('cache not synced');
  });

  it.each<[string, Partial<AdmissionRequest>, RegExp]>([
    [
      'another kind',
      { kind: { group: '', version: 'v1', kind: 'Pod' } },
      /only handles UPDATE of chaperone\.dev accessrequests\/status.*got kind core\/Pod/,
    ],
    ['a CREATE', { operation: 'CREATE', oldObject: undefined }, /got CREATE of subresource status/],
    ['the main resource', { subResource: undefined }, /got UPDATE of the main resource/],
    ['no userInfo', { userInfo: undefined as never }, /no userInfo\.username/],
    ['no object', { object: undefined }, /request\.object is not an AccessRequest: missing/],
    ['no oldObject', { oldObject: undefined }, /request\.oldObject is not an AccessRequest: missing/],
    ['an object of another kind', { object: { ...decided, kind: 'Pod' } }, /request\.object .*kind is "Pod"/],
    [
      'an object without spec.policy',
      { oldObject: { ...stored, spec: { ...stored.spec, policy: '' } } },
      /request\.oldObject .*spec\.policy is missing/,
    ],
    [
      'an object without requester',
      { object: { ...decided, spec: { ...decided.spec, requester: {} as never } } },
      /spec\.requester\.serviceAccount is missing/,
    ],
    [
      'an onBehalfOf without user',
      {
        object: {
          ...decided,
          spec: { ...decided.spec, requester: { ...decided.spec.requester, onBehalfOf: {} as never } },
        },
      },
      /spec\.requester\.onBehalfOf\.user is missing/,
    ],
    [
      'a status that is not an object',
      { object: { ...decided, status: 'x' as never } },
      /status is not an object/,
    ],
    [
      'approvals that are not a list',
      { object: { ...decided, status: { approvals: {} as never } } },
      /status\.approvals is not a list/,
    ],
    ['no metadata.name', { object: { ...decided, metadata: {} } }, /metadata\.name is missing/],
  ])('a review with %s is a 400 with a clear message', async (_name, overrides, message) => {
    const lookups: Array<[string, string]> = [];
    const verdict = await handler(lookups)(review(overrides));
    expect(verdict).toMatchObject({ allowed: false, code: 400 });
    expect(verdict.allowed ? '' : verdict.message).toMatch(message);
    expect(lookups).toEqual([]);
  });
});
