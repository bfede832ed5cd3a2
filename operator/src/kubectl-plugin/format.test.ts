import type { AccessRequest, AccessRequestStatus } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import {
  apiErrorMessage,
  describeOutcome,
  formatRequestsTable,
  humanDuration,
  isPending,
  OPERATION_WIDTH,
  parseWarningHeader,
} from './format.js';

const NOW = new Date('2030-01-01T12:00:00Z');

function request(
  name: string,
  opts: {
    ns?: string;
    created?: string;
    expires?: string;
    text?: string;
    status?: AccessRequestStatus;
    user?: string;
  } = {},
): AccessRequest {
  return {
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'AccessRequest',
    metadata: {
      name,
      namespace: opts.ns ?? 'team-a',
      creationTimestamp: opts.created ?? '2030-01-01T11:55:00Z',
    },
    spec: {
      requester: {
        serviceAccount: { namespace: 'team-a', name: 'orders-agent' },
        ...(opts.user ? { onBehalfOf: { user: opts.user } } : {}),
      },
      connection: 'orders-db',
      policy: 'orders-agents',
      operation: { type: 'postgres', text: opts.text ?? 'DELETE FROM t WHERE id = $1' },
      expiresAt: opts.expires ?? '2030-01-01T12:05:00Z',
    },
    ...(opts.status ? { status: opts.status } : {}),
  };
}

describe('humanDuration (kubectl AGE)', () => {
  it.each<[number, string]>([
    [-5_000, '<invalid>'],
    [-500, '0s'],
    [0, '0s'],
    [59_000, '59s'],
    [119_000, '119s'],
    [120_000, '2m'],
    [330_000, '5m30s'],
    [600_000, '10m'],
    [179 * 60_000, '179m'],
    [3 * 3_600_000, '3h'],
    [3 * 3_600_000 + 20 * 60_000, '3h20m'],
    [30 * 3_600_000, '30h'],
    [3 * 86_400_000 + 4 * 3_600_000, '3d4h'],
    [3 * 86_400_000, '3d'],
    [100 * 86_400_000, '100d'],
    [(2 * 365 + 10) * 86_400_000, '2y10d'],
    [9 * 365 * 86_400_000, '9y'],
  ])('%d ms → %s', (ms, text) => {
    expect(humanDuration(ms)).toBe(text);
  });
});

describe('formatRequestsTable', () => {
  it('renders kubectl-style columns, oldest first, with the requester and a one-line operation', () => {
    const table = formatRequestsTable(
      [
        request('newer', { created: '2030-01-01T11:59:00Z', user: 'bob@example.com' }),
        request('older', { text: 'UPDATE orders\n  SET x = $1', expires: '2030-01-01T11:58:00Z' }),
      ],
      { now: NOW, allNamespaces: false },
    );
    expect(table.split('\n')).toEqual([
      'NAME    PHASE     CONNECTION   REQUESTER                                 OPERATION                     AGE   EXPIRES',
      'older   Pending   orders-db    team-a/orders-agent                       UPDATE orders SET x = $1      5m    2m ago',
      'newer   Pending   orders-db    bob@example.com via team-a/orders-agent   DELETE FROM t WHERE id = $1   60s   in 5m',
    ]);
  });

  it('adds NAMESPACE with -A, shows approvals so far, and truncates long operations', () => {
    const long = `SELECT ${'x, '.repeat(50)}y FROM t`;
    const table = formatRequestsTable(
      [
        request('b', {
          ns: 'team-b',
          text: long,
          status: { phase: 'Pending', approvals: [{ by: 'alice' }] },
        }),
        request('a', { ns: 'team-a', status: { phase: 'Approved', decision: { verdict: 'Approved' } } }),
      ],
      { now: NOW, allNamespaces: true },
    );
    const [header, first, second] = table.split('\n');
    expect(header).toMatch(/^NAMESPACE\s+NAME\s+PHASE/);
    expect(first).toMatch(/^team-a\s+a\s+Approved\s/);
    expect(second).toMatch(/^team-b\s+b\s+Pending\(1 approved\)\s/);
    const op = `${long.slice(0, OPERATION_WIDTH - 1)}…`;
    expect(second).toContain(op);
    expect(second).not.toContain(long);
  });

  it('isPending: no phase or Pending without a decision', () => {
    expect(isPending(request('a'))).toBe(true);
    expect(isPending(request('a', { status: { phase: 'Pending', approvals: [{ by: 'x' }] } }))).toBe(true);
    expect(isPending(request('a', { status: { phase: 'Expired' } }))).toBe(false);
    expect(isPending(request('a', { status: { phase: 'Denied', decision: { verdict: 'Denied' } } }))).toBe(
      false,
    );
  });
});

describe('parseWarningHeader', () => {
  it.each<[string | undefined, string[]]>([
    [undefined, []],
    ['', []],
    [
      '299 - "1 of 2 approvals recorded for AccessRequest a/b"',
      ['1 of 2 approvals recorded for AccessRequest a/b'],
    ],
    ['299 - "first, with comma", 299 - "say \\"hi\\""', ['first, with comma', 'say "hi"']],
  ])('%j', (header, texts) => {
    expect(parseWarningHeader(header)).toEqual(texts);
  });
});

describe('describeOutcome', () => {
  it('approved and denied', () => {
    expect(
      describeOutcome(
        'r1',
        'Approved',
        request('r1', { status: { phase: 'Approved', decision: { verdict: 'Approved' } } }),
        [],
      ),
    ).toEqual({ ok: true, message: 'accessrequest.chaperone.dev/r1 approved' });
    expect(
      describeOutcome(
        'r1',
        'Denied',
        request('r1', { status: { phase: 'Denied', decision: { verdict: 'Denied' } } }),
        [],
      ),
    ).toEqual({ ok: true, message: 'accessrequest.chaperone.dev/r1 denied' });
  });

  it('a partial approval reports the count from the webhook warning', () => {
    const r = request('r1', { status: { phase: 'Pending', approvals: [{ by: 'alice' }] } });
    expect(
      describeOutcome('r1', 'Approved', r, [
        '1 of 2 approvals recorded for AccessRequest team-a/r1; waiting',
      ]),
    ).toEqual({
      ok: true,
      message: 'accessrequest.chaperone.dev/r1: approval 1 of 2 recorded; waiting for more approvers',
    });
    expect(describeOutcome('r1', 'Approved', r, [])).toEqual({
      ok: true,
      message: 'accessrequest.chaperone.dev/r1: approval 1 recorded; waiting for more approvers',
    });
  });

  it('a decision nobody stamped means the webhook is missing: an error', () => {
    const r = request('r1', { status: { phase: 'Pending', decision: { verdict: 'Approved' } } });
    const outcome = describeOutcome('r1', 'Approved', r, []);
    expect(outcome.ok).toBe(false);
    expect(outcome.message).toMatch(/approval webhook is not installed/);
  });
});

describe('apiErrorMessage', () => {
  it('passes the webhook refusal through verbatim, kubectl-style', () => {
    const body = JSON.stringify({
      kind: 'Status',
      status: 'Failure',
      reason: 'Forbidden',
      code: 403,
      message: 'admission webhook "approval.chaperone.dev" denied the request: mallory is not an approver',
    });
    expect(apiErrorMessage(403, body)).toBe(
      'Error from server (Forbidden): admission webhook "approval.chaperone.dev" denied the request: mallory is not an approver',
    );
  });

  it('an RBAC refusal says which permissions approvers need', () => {
    const text = apiErrorMessage(403, {
      message: 'accessrequests.chaperone.dev "r1" is forbidden: User "x" cannot patch resource',
      reason: 'Forbidden',
    });
    expect(text).toMatch(
      /^Error from server \(Forbidden\): accessrequests\.chaperone\.dev "r1" is forbidden/,
    );
    expect(text).toMatch(/chaperone-approver ClusterRole/);
  });

  it('not found suggests listing; a body that is not a Status is shown as is', () => {
    expect(
      apiErrorMessage(
        404,
        '{"message":"accessrequests.chaperone.dev \\"x\\" not found","reason":"NotFound"}',
      ),
    ).toMatch(
      /NotFound\): accessrequests.chaperone.dev "x" not found\nList the pending requests with: kubectl chaperone requests/,
    );
    expect(apiErrorMessage(502, 'bad gateway')).toBe('Error from server (HTTP 502): bad gateway');
    expect(apiErrorMessage(422, undefined)).toBe('Error from server (Invalid): HTTP 422');
  });
});
