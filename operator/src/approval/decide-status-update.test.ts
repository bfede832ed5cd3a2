import type { AccessPolicy, AccessRequest, AccessRequestStatus } from '@chaperone/api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AdmissionVerdict, UserInfo } from '../admission/admission-review.js';
import { decideStatusUpdate, jsonEqual, type StatusUpdateInput } from './decide-status-update.js';
import { applyJsonPatch } from './json-patch.test-support.js';

const NOW = new Date('2030-01-01T12:00:00.123Z');
const NOW_STAMP = '2030-01-01T12:00:00Z';
const OPERATOR = 'system:serviceaccount:chaperone-system:chaperone-operator';
const REQUESTER_SA = 'system:serviceaccount:team-a:orders-agent';

const alice: UserInfo = { username: 'alice', groups: ['dba', 'system:authenticated'] };
const carol: UserInfo = { username: 'carol', groups: ['system:authenticated'] };
const dave: UserInfo = { username: 'dave', groups: ['dba'] };
const mallory: UserInfo = { username: 'mallory', groups: ['devs', 'system:authenticated'] };
const bob: UserInfo = { username: 'bob@example.com', groups: ['dba'] };
const operator: UserInfo = { username: OPERATOR, groups: ['system:serviceaccounts'] };

function accessRequest(status?: AccessRequestStatus, expiresAt = '2030-01-01T12:10:00Z'): AccessRequest {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AccessRequest',
    metadata: { name: 'orders-db-7f3a9c', namespace: 'team-a' },
    spec: {
      requester: {
        serviceAccount: { namespace: 'team-a', name: 'orders-agent' },
        onBehalfOf: { user: 'bob@example.com', groups: ['orders-oncall'] },
      },
      connection: 'orders-db',
      policy: 'orders-agents',
      operation: {
        type: 'postgres',
        class: 'write',
        text: 'UPDATE public.orders SET status = $1 WHERE id = $2',
      },
      expiresAt,
    },
    ...(status ? { status } : {}),
  };
}

function accessPolicy(approval: { users?: string[]; groups?: string[]; required?: number }): AccessPolicy {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name: 'orders-agents', namespace: 'team-a' },
    spec: {
      subjects: [{ kind: 'ServiceAccount', name: 'orders-agent' }],
      connections: { names: ['orders-db'] },
      rules: [{ name: 'write', action: 'approve', postgres: { operations: ['write'] } }],
      approval: {
        approvers: {
          ...(approval.users ? { users: approval.users } : {}),
          ...(approval.groups ? { groups: approval.groups } : {}),
        },
        ...(approval.required ? { required: approval.required } : {}),
      },
    },
  } as AccessPolicy;
}

const dbaPolicy = accessPolicy({ groups: ['dba'], users: ['carol'] });
const twoPolicy = accessPolicy({ groups: ['dba'], users: ['carol'], required: 2 });
const threePolicy = accessPolicy({ groups: ['dba'], users: ['carol'], required: 3 });

const pending: AccessRequestStatus = { phase: 'Pending' };
const approvedByAlice: AccessRequestStatus = {
  phase: 'Approved',
  decision: { verdict: 'Approved', by: 'alice', groups: ['dba'], at: '2030-01-01T11:59:00Z' },
};
const aliceApproval = { by: 'alice', groups: ['dba'], at: '2030-01-01T11:58:00Z' };

interface Case {
  name: string;
  old?: AccessRequestStatus;
  new: AccessRequestStatus | undefined;
  user: UserInfo;
  policy?: AccessPolicy | null;
  expiresAt?: string;
  /** Expected status after the webhook's patch is applied to the new object. */
  result?: AccessRequestStatus;
  noPatch?: boolean;
  warning?: RegExp;
  refused?: { code: 400 | 403; message: RegExp };
}

const cases: Case[] = [
  // The operator's own writes.
  {
    name: 'operator expires a pending request',
    new: { phase: 'Expired' },
    user: operator,
    noPatch: true,
  },
  {
    name: 'operator writes conditions and observedGeneration on a decided request',
    old: approvedByAlice,
    new: {
      ...approvedByAlice,
      observedGeneration: 1,
      conditions: [
        { type: 'Decided', status: 'True', lastTransitionTime: NOW_STAMP, reason: 'Told', message: 'x' },
      ],
    },
    user: operator,
    policy: null,
    noPatch: true,
  },
  // Single approver decisions.
  {
    name: 'a member of an approver group approves',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    user: alice,
    result: {
      phase: 'Approved',
      decision: { verdict: 'Approved', by: 'alice', groups: ['dba', 'system:authenticated'], at: NOW_STAMP },
    },
  },
  {
    name: 'a listed approver user approves, with a comment',
    new: { phase: 'Pending', decision: { verdict: 'Approved', comment: 'ticket OPS-142' } },
    user: carol,
    result: {
      phase: 'Approved',
      decision: {
        verdict: 'Approved',
        comment: 'ticket OPS-142',
        by: 'carol',
        groups: ['system:authenticated'],
        at: NOW_STAMP,
      },
    },
  },
  {
    name: 'an approver denies',
    new: { phase: 'Pending', decision: { verdict: 'Denied', comment: 'not during the freeze' } },
    user: dave,
    result: {
      phase: 'Denied',
      decision: {
        verdict: 'Denied',
        comment: 'not during the freeze',
        by: 'dave',
        groups: ['dba'],
        at: NOW_STAMP,
      },
    },
  },
  {
    name: 'forged by, groups and at are overwritten with the caller',
    new: {
      phase: 'Pending',
      decision: { verdict: 'Approved', by: 'carol', groups: ['system:masters'], at: '2000-01-01T00:00:00Z' },
    },
    user: alice,
    result: {
      phase: 'Approved',
      decision: { verdict: 'Approved', by: 'alice', groups: ['dba', 'system:authenticated'], at: NOW_STAMP },
    },
  },
  {
    name: 'a phase equal to the verdict is tolerated (the webhook sets it anyway)',
    new: { phase: 'Approved', decision: { verdict: 'Approved' } },
    user: alice,
    result: {
      phase: 'Approved',
      decision: { verdict: 'Approved', by: 'alice', groups: ['dba', 'system:authenticated'], at: NOW_STAMP },
    },
  },
  {
    name: 'a request without any status yet: phase is added',
    old: undefined,
    new: { decision: { verdict: 'Denied' } },
    user: alice,
    result: {
      phase: 'Denied',
      decision: { verdict: 'Denied', by: 'alice', groups: ['dba', 'system:authenticated'], at: NOW_STAMP },
    },
  },
  {
    name: 'a caller without groups who is a listed user',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    user: { username: 'carol' },
    result: { phase: 'Approved', decision: { verdict: 'Approved', by: 'carol', groups: [], at: NOW_STAMP } },
  },
  {
    name: 'a no-op write to a pending request changes nothing',
    new: { phase: 'Pending' },
    user: mallory,
    noPatch: true,
  },
  // Other status fields are the operator's.
  {
    name: 'a phase that does not match the verdict is refused',
    new: { phase: 'Denied', decision: { verdict: 'Approved' } },
    user: alice,
    refused: {
      code: 403,
      message: /alice may not change status\.phase of AccessRequest team-a\/orders-db-7f3a9c/,
    },
  },
  {
    name: 'an approver cannot set phase Expired',
    new: { phase: 'Expired' },
    user: alice,
    refused: { code: 403, message: /may not change status\.phase/ },
  },
  {
    name: 'an approver cannot write conditions',
    new: {
      phase: 'Pending',
      conditions: [
        { type: 'Decided', status: 'True', lastTransitionTime: NOW_STAMP, reason: 'X', message: 'x' },
      ],
    },
    user: alice,
    refused: { code: 403, message: /may not change status\.conditions.*approvers only set status\.decision/ },
  },
  {
    name: 'an approver cannot write observedGeneration',
    new: { phase: 'Pending', observedGeneration: 7, decision: { verdict: 'Approved' } },
    user: alice,
    refused: { code: 403, message: /status\.observedGeneration/ },
  },
  {
    name: 'an approver cannot write approvals directly',
    new: { phase: 'Pending', approvals: [{ by: 'carol' }, { by: 'dave' }] },
    user: alice,
    policy: twoPolicy,
    refused: { code: 403, message: /status\.approvals/ },
  },
  // Final states.
  {
    name: 'another approver cannot change a decision',
    old: approvedByAlice,
    new: { ...approvedByAlice, decision: { verdict: 'Denied' } },
    user: carol,
    refused: {
      code: 403,
      message:
        /AccessRequest team-a\/orders-db-7f3a9c was already Approved by alice at 2030-01-01T11:59:00Z; decisions cannot be changed/,
    },
  },
  {
    name: 'the decider cannot re-run the same patch on a decided request',
    old: approvedByAlice,
    new: approvedByAlice,
    user: alice,
    refused: { code: 403, message: /already Approved by alice/ },
  },
  {
    name: 'nobody but the operator can remove a decision',
    old: approvedByAlice,
    new: { phase: 'Pending' },
    user: alice,
    refused: { code: 403, message: /decisions cannot be changed/ },
  },
  {
    name: 'an expired request cannot be decided',
    old: { phase: 'Expired' },
    new: { phase: 'Expired', decision: { verdict: 'Approved' } },
    user: alice,
    refused: {
      code: 403,
      message: /expired at 2030-01-01T12:10:00Z without a decision; it can no longer be decided/,
    },
  },
  {
    name: 'a pending request past spec.expiresAt cannot be decided',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    expiresAt: '2030-01-01T11:59:59Z',
    user: alice,
    refused: { code: 403, message: /expired at 2030-01-01T11:59:59Z; it can no longer be decided/ },
  },
  {
    name: 'a request expiring exactly now cannot be decided',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    expiresAt: NOW.toISOString(),
    user: alice,
    refused: { code: 403, message: /expired/ },
  },
  {
    name: 'a request with an unreadable expiresAt is refused (fail closed)',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    expiresAt: 'soon',
    user: alice,
    refused: { code: 403, message: /expired at soon/ },
  },
  // Policy and approvers.
  {
    name: 'a missing policy fails closed',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    user: alice,
    policy: null,
    refused: {
      code: 403,
      message: /^AccessPolicy orders-agents no longer exists; the request cannot be decided/,
    },
  },
  {
    name: 'a non-approver is refused, naming the policy and its approvers',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    user: mallory,
    refused: {
      code: 403,
      message:
        /mallory is not an approver for AccessRequest team-a\/orders-db-7f3a9c: AccessPolicy team-a\/orders-agents allows users carol and members of groups dba/,
    },
  },
  {
    name: 'a non-approver cannot deny either',
    new: { phase: 'Pending', decision: { verdict: 'Denied' } },
    user: mallory,
    refused: { code: 403, message: /mallory is not an approver/ },
  },
  {
    name: 'a policy without approvers: nobody can decide',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    user: alice,
    policy: accessPolicy({}),
    refused: { code: 403, message: /lists no approvers/ },
  },
  // Self-approval.
  {
    name: 'the requesting ServiceAccount cannot approve, even when listed as an approver',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    user: { username: REQUESTER_SA, groups: ['system:serviceaccounts', 'system:serviceaccounts:team-a'] },
    policy: accessPolicy({ users: [REQUESTER_SA], groups: ['dba'] }),
    refused: {
      code: 403,
      message:
        /cannot approve AccessRequest team-a\/orders-db-7f3a9c: it is the ServiceAccount team-a\/orders-agent/,
    },
  },
  {
    name: 'the on-behalf-of user cannot approve, even as a member of an approver group',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    user: bob,
    refused: { code: 403, message: /bob@example\.com cannot approve .*on behalf of bob@example\.com/ },
  },
  {
    name: 'the on-behalf-of user with an OIDC username prefix cannot approve',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    user: { username: 'oidc:bob@example.com', groups: ['dba'] },
    refused: { code: 403, message: /on behalf of bob@example\.com/ },
  },
  {
    name: 'the on-behalf-of user with the issuer# prefix cannot approve',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    user: { username: 'https://dex.example.com#bob@example.com', groups: ['dba'] },
    refused: { code: 403, message: /on behalf of bob@example\.com/ },
  },
  {
    name: 'a user whose name merely contains the on-behalf-of user is not the requester',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    user: { username: 'notbob@example.com', groups: ['dba'] },
    result: {
      phase: 'Approved',
      decision: { verdict: 'Approved', by: 'notbob@example.com', groups: ['dba'], at: NOW_STAMP },
    },
  },
  {
    name: 'the requester, if an approver, may deny (withdraw) its own request',
    new: { phase: 'Pending', decision: { verdict: 'Denied' } },
    user: bob,
    result: {
      phase: 'Denied',
      decision: { verdict: 'Denied', by: 'bob@example.com', groups: ['dba'], at: NOW_STAMP },
    },
  },
  // Malformed decisions.
  {
    name: 'an unknown verdict is a bad request',
    new: { phase: 'Pending', decision: { verdict: 'Maybe' } as never },
    user: alice,
    refused: { code: 400, message: /verdict must be Approved or Denied, got "Maybe"/ },
  },
  {
    name: 'a decision without a verdict is a bad request',
    new: { phase: 'Pending', decision: { comment: 'ok' } as never },
    user: alice,
    refused: { code: 400, message: /verdict must be Approved or Denied, got null/ },
  },
  {
    name: 'a non-string comment is a bad request',
    new: { phase: 'Pending', decision: { verdict: 'Approved', comment: 42 } as never },
    user: alice,
    refused: { code: 400, message: /comment must be a string/ },
  },
  {
    name: 'a decision that is not an object is a bad request',
    new: { phase: 'Pending', decision: 'Approved' as never },
    user: alice,
    refused: { code: 400, message: /status\.decision must be an object/ },
  },
  // Several approvers.
  {
    name: 'first of two approvals: recorded, decision withheld, still Pending',
    new: { phase: 'Pending', decision: { verdict: 'Approved', comment: 'lgtm' } },
    user: alice,
    policy: twoPolicy,
    result: {
      phase: 'Pending',
      approvals: [{ by: 'alice', groups: ['dba', 'system:authenticated'], at: NOW_STAMP, comment: 'lgtm' }],
    },
    warning:
      /^1 of 2 approvals recorded for AccessRequest team-a\/orders-db-7f3a9c; waiting for 1 more approver$/,
  },
  {
    name: 'first of two approvals sent with phase Approved: phase stays Pending',
    new: { phase: 'Approved', decision: { verdict: 'Approved' } },
    user: alice,
    policy: twoPolicy,
    result: {
      phase: 'Pending',
      approvals: [{ by: 'alice', groups: ['dba', 'system:authenticated'], at: NOW_STAMP }],
    },
    warning: /1 of 2 approvals recorded/,
  },
  {
    name: 'the same approver cannot approve twice',
    old: { phase: 'Pending', approvals: [aliceApproval] },
    new: { phase: 'Pending', approvals: [aliceApproval], decision: { verdict: 'Approved' } },
    user: alice,
    policy: twoPolicy,
    refused: {
      code: 403,
      message:
        /alice already approved AccessRequest team-a\/orders-db-7f3a9c \(1 of 2 approvals\).*another approver must approve/,
    },
  },
  {
    name: 'second approval by someone else decides',
    old: { phase: 'Pending', approvals: [aliceApproval] },
    new: {
      phase: 'Pending',
      approvals: [aliceApproval],
      decision: { verdict: 'Approved', comment: 'ok too' },
    },
    user: carol,
    policy: twoPolicy,
    result: {
      phase: 'Approved',
      approvals: [
        aliceApproval,
        { by: 'carol', groups: ['system:authenticated'], at: NOW_STAMP, comment: 'ok too' },
      ],
      decision: {
        verdict: 'Approved',
        comment: 'ok too',
        by: 'carol',
        groups: ['system:authenticated'],
        at: NOW_STAMP,
      },
    },
  },
  {
    name: 'second of three approvals: still Pending, with a count',
    old: { phase: 'Pending', approvals: [aliceApproval] },
    new: { phase: 'Pending', approvals: [aliceApproval], decision: { verdict: 'Approved' } },
    user: dave,
    policy: threePolicy,
    result: {
      phase: 'Pending',
      approvals: [aliceApproval, { by: 'dave', groups: ['dba'], at: NOW_STAMP }],
    },
    warning: /^2 of 3 approvals recorded .*waiting for 1 more approver$/,
  },
  {
    name: 'first of three approvals: two more needed',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    user: carol,
    policy: threePolicy,
    result: {
      phase: 'Pending',
      approvals: [{ by: 'carol', groups: ['system:authenticated'], at: NOW_STAMP }],
    },
    warning: /^1 of 3 approvals recorded .*waiting for 2 more approvers$/,
  },
  {
    name: 'one denial denies at once, approvals kept',
    old: { phase: 'Pending', approvals: [aliceApproval] },
    new: { phase: 'Pending', approvals: [aliceApproval], decision: { verdict: 'Denied', comment: 'no' } },
    user: carol,
    policy: twoPolicy,
    result: {
      phase: 'Denied',
      approvals: [aliceApproval],
      decision: {
        verdict: 'Denied',
        comment: 'no',
        by: 'carol',
        groups: ['system:authenticated'],
        at: NOW_STAMP,
      },
    },
  },
  {
    name: 'an earlier approver may still deny',
    old: { phase: 'Pending', approvals: [aliceApproval] },
    new: { phase: 'Pending', approvals: [aliceApproval], decision: { verdict: 'Denied' } },
    user: alice,
    policy: twoPolicy,
    result: {
      phase: 'Denied',
      approvals: [aliceApproval],
      decision: { verdict: 'Denied', by: 'alice', groups: ['dba', 'system:authenticated'], at: NOW_STAMP },
    },
  },
  {
    name: 'self-approval is refused before approvals are counted',
    new: { phase: 'Pending', decision: { verdict: 'Approved' } },
    user: bob,
    policy: twoPolicy,
    refused: { code: 403, message: /bob@example\.com cannot approve/ },
  },
];

function run(c: Case): { verdict: AdmissionVerdict; input: StatusUpdateInput } {
  const old = 'old' in c ? c.old : pending;
  const input: StatusUpdateInput = {
    oldRequest: accessRequest(old, c.expiresAt),
    newRequest: accessRequest(c.new, c.expiresAt),
    userInfo: c.user,
    policy: c.policy === null ? undefined : (c.policy ?? dbaPolicy),
    operatorUsernames: [OPERATOR],
    now: NOW,
  };
  return { verdict: decideStatusUpdate(input), input };
}

describe('decideStatusUpdate', () => {
  it.each(cases)('$name', (c) => {
    const { verdict, input } = run(c);
    if (c.refused) {
      expect(verdict).toMatchObject({ allowed: false, code: c.refused.code });
      expect(verdict.allowed ? '' : verdict.message).toMatch(c.refused.message);
      return;
    }
    expect(verdict.allowed).toBe(true);
    if (!verdict.allowed) return;
    if (c.noPatch) {
      expect(verdict.patch ?? []).toEqual([]);
    } else {
      for (const op of verdict.patch ?? []) expect(op.path).toMatch(/^\/status\//);
      const patched = applyJsonPatch(input.newRequest, verdict.patch ?? []);
      expect(patched.status).toEqual(c.result);
      expect(patched.spec).toEqual(input.newRequest.spec);
      expect(patched.metadata).toEqual(input.newRequest.metadata);
    }
    if (c.warning) {
      expect(verdict.warnings).toHaveLength(1);
      expect(verdict.warnings?.[0]).toMatch(c.warning);
    } else {
      expect(verdict.warnings ?? []).toEqual([]);
    }
  });

  it('records at most 64 groups (the schema limit)', () => {
    const groups = ['dba', ...Array.from({ length: 80 }, (_, i) => `g${i}`)];
    const { verdict, input } = run({
      name: 'many groups',
      new: { phase: 'Pending', decision: { verdict: 'Approved' } },
      user: { username: 'alice', groups },
    });
    expect(verdict.allowed).toBe(true);
    const patched = applyJsonPatch(input.newRequest, verdict.allowed ? (verdict.patch ?? []) : []);
    expect(patched.status?.decision?.groups).toEqual(groups.slice(0, 64));
  });
});

// ---- properties ------------------------------------------------------------------------------

const usernames = [
  'alice',
  'carol',
  'dave',
  'mallory',
  'bob@example.com',
  'oidc:bob@example.com',
  REQUESTER_SA,
  OPERATOR,
];
const groupNames = ['dba', 'devs', 'system:authenticated'];

const userArb: fc.Arbitrary<UserInfo> = fc.record({
  username: fc.constantFrom(...usernames),
  groups: fc.subarray(groupNames),
});
const nonOperatorArb = userArb.filter((u) => u.username !== OPERATOR);
const approvalArb = fc.record(
  { by: fc.constantFrom(...usernames), at: fc.constant('2030-01-01T11:00:00Z'), comment: fc.string() },
  { requiredKeys: ['by'] },
);
const decisionArb = fc.record(
  {
    verdict: fc.constantFrom('Approved', 'Denied', 'Maybe'),
    comment: fc.string({ maxLength: 8 }),
    by: fc.constantFrom(...usernames),
    groups: fc.subarray(['system:masters', 'dba']),
    at: fc.constantFrom('2000-01-01T00:00:00Z', NOW_STAMP),
  },
  { requiredKeys: ['verdict'] },
) as fc.Arbitrary<NonNullable<AccessRequestStatus['decision']>>;
const statusArb: fc.Arbitrary<AccessRequestStatus> = fc.record(
  {
    phase: fc.constantFrom('Pending', 'Approved', 'Denied', 'Expired'),
    decision: decisionArb,
    approvals: fc.uniqueArray(approvalArb, { selector: (a) => a.by, maxLength: 3 }),
    observedGeneration: fc.nat(3),
  },
  { requiredKeys: [] },
);
const policyArb: fc.Arbitrary<AccessPolicy | undefined> = fc.option(
  fc
    .record({
      users: fc.subarray(usernames),
      groups: fc.subarray(groupNames),
      required: fc.integer({ min: 1, max: 3 }),
    })
    .map(accessPolicy),
  { nil: undefined, freq: 8 },
);
/** Mostly open requests, since those are where a decision can happen. */
const openStatusArb: fc.Arbitrary<AccessRequestStatus> = fc.record(
  {
    phase: fc.constant('Pending' as const),
    approvals: fc.uniqueArray(approvalArb, { selector: (a) => a.by, maxLength: 2 }),
    observedGeneration: fc.nat(3),
  },
  { requiredKeys: [] },
);
const oldStatusArb = fc.oneof({ weight: 3, arbitrary: openStatusArb }, { weight: 1, arbitrary: statusArb });
/** A new status: the old one with a decision added, or with arbitrary other edits, or unchanged. */
const transitionArb = oldStatusArb.chain((old) =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: decisionArb.map((decision) => ({ old, next: { ...old, decision } as AccessRequestStatus })),
    },
    { weight: 1, arbitrary: statusArb.map((other) => ({ old, next: other })) },
    { weight: 1, arbitrary: fc.constant({ old, next: old }) },
  ),
);
const inputArb = fc.record({
  transition: transitionArb,
  user: nonOperatorArb,
  policy: policyArb,
  expired: fc.nat(4).map((n) => n === 0),
});

function toInput({
  transition,
  user,
  policy,
  expired,
}: {
  transition: { old: AccessRequestStatus; next: AccessRequestStatus };
  user: UserInfo;
  policy: AccessPolicy | undefined;
  expired: boolean;
}): StatusUpdateInput {
  const expiresAt = expired ? '2030-01-01T11:00:00Z' : '2030-01-01T13:00:00Z';
  return {
    oldRequest: accessRequest(transition.old, expiresAt),
    newRequest: accessRequest(transition.next, expiresAt),
    userInfo: user,
    policy,
    operatorUsernames: [OPERATOR],
    now: NOW,
  };
}

describe('decideStatusUpdate properties', () => {
  it('no non-operator user ever changes a decided, expired or otherwise final request', () => {
    fc.assert(
      fc.property(inputArb, (v) => {
        const input = toInput(v);
        const old = input.oldRequest.status ?? {};
        fc.pre(old.decision !== undefined || (old.phase ?? 'Pending') !== 'Pending');
        expect(decideStatusUpdate(input).allowed).toBe(false);
      }),
      { numRuns: 500 },
    );
  });

  it('after the patch, a decision or approval is always by the caller, now, with the caller groups', () => {
    fc.assert(
      fc.property(inputArb, (v) => {
        const input = toInput(v);
        const verdict = decideStatusUpdate(input);
        if (!verdict.allowed) return;
        const after = applyJsonPatch(input.newRequest, verdict.patch ?? []).status ?? {};
        const before = input.oldRequest.status ?? {};
        if (after.decision && !before.decision) {
          expect(after.decision.by).toBe(input.userInfo.username);
          expect(after.decision.at).toBe(NOW_STAMP);
          expect(after.decision.groups).toEqual(input.userInfo.groups);
        }
        const added = (after.approvals ?? []).slice((before.approvals ?? []).length);
        for (const a of added) {
          expect(a.by).toBe(input.userInfo.username);
          expect(a.at).toBe(NOW_STAMP);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('an allowed non-operator write changes at most decision, phase (to match it) and appends one approval', () => {
    fc.assert(
      fc.property(inputArb, (v) => {
        const input = toInput(v);
        const verdict = decideStatusUpdate(input);
        if (!verdict.allowed) return;
        for (const op of verdict.patch ?? []) expect(op.path).toMatch(/^\/status\//);
        const after = applyJsonPatch(input.newRequest, verdict.patch ?? []).status ?? {};
        const before = input.oldRequest.status ?? {};
        expect(after.observedGeneration).toEqual(before.observedGeneration);
        expect(after.conditions).toEqual(before.conditions);
        const oldApprovals = before.approvals ?? [];
        const newApprovals = after.approvals ?? [];
        expect(jsonEqual(newApprovals.slice(0, oldApprovals.length), oldApprovals)).toBe(true);
        expect(newApprovals.length - oldApprovals.length).toBeLessThanOrEqual(1);
        expect(new Set(newApprovals.map((a) => a.by)).size).toBe(newApprovals.length);
        // The CRD's rule: phase Approved/Denied needs a decision with that verdict, and vice versa here.
        const phase = after.phase ?? 'Pending';
        if (after.decision) expect(phase).toBe(after.decision.verdict);
        else expect(phase).toBe(before.phase ?? 'Pending');
        // Something decided means a policy approver who is not the requester made it.
        if (after.decision || newApprovals.length > oldApprovals.length) {
          const approvers = input.policy?.spec.approval?.approvers;
          const isApprover =
            approvers?.users?.includes(input.userInfo.username) ||
            (input.userInfo.groups ?? []).some((g) => approvers?.groups?.includes(g));
          expect(isApprover).toBe(true);
          if (after.decision?.verdict === 'Approved' || newApprovals.length > oldApprovals.length) {
            expect(input.userInfo.username).not.toBe(REQUESTER_SA);
            expect(input.userInfo.username).not.toMatch(/(^|:)bob@example\.com$/);
          }
          const required = input.policy?.spec.approval?.required ?? 1;
          if (after.decision?.verdict === 'Approved' && required > 1) {
            expect(newApprovals.length).toBeGreaterThanOrEqual(required);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('the operator may write any status, unpatched', () => {
    fc.assert(
      fc.property(transitionArb, policyArb, ({ old, next }, policy) => {
        const verdict = decideStatusUpdate({
          oldRequest: accessRequest(old),
          newRequest: accessRequest(next),
          userInfo: { username: OPERATOR },
          policy,
          operatorUsernames: [OPERATOR],
          now: NOW,
        });
        expect(verdict).toEqual({ allowed: true });
      }),
    );
  });
});
