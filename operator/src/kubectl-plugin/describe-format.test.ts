import type { AccessRequest } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { formatDescribe, printable, recentStatements } from './describe-format.js';
import { formatRequestsTable, formatWatchLine, tableWidths } from './format.js';

const NOW = new Date('2030-01-01T12:00:00Z');
const req: AccessRequest = {
  apiVersion: 'chaperone.dev/v1alpha1',
  kind: 'AccessRequest',
  metadata: { name: 'orders-db-1', namespace: 'shop', creationTimestamp: '2030-01-01T11:59:00Z', uid: 'u1' },
  spec: {
    requester: { serviceAccount: { namespace: 'shop', name: 'orders-agent' }, pod: { name: 'agent-1' } },
    connection: 'orders-db',
    policy: 'orders-agents',
    rule: 'write-needs-approval',
    sessionId: 'S1',
    operation: {
      type: 'postgres',
      class: 'write',
      text: 'UPDATE orders SET status = $1',
      riskReasons: ['rule write-needs-approval'],
    },
    expiresAt: '2030-01-01T12:09:00Z',
  },
  status: {
    phase: 'Pending',
    notifications: [{ target: 'dba-slack', event: 'requested', state: 'Delivered', attempts: 1 }],
  },
};

describe('describe output', () => {
  const events = [
    { seq: 1, time: '2030-01-01T11:58:00.123Z', type: 'session.start', data: {} },
    {
      seq: 2,
      time: '2030-01-01T11:58:01Z',
      type: 'query',
      data: { text: 'SELECT * FROM orders', decision: 'allowed' },
    },
    { seq: 3, time: '2030-01-01T11:58:02Z', type: 'denied', data: { operation: 'DROP TABLE orders' } },
    {
      seq: 4,
      time: '2030-01-01T11:59:00Z',
      type: 'approval.requested',
      data: { text: 'UPDATE orders SET status = $1' },
    },
    { seq: 5, time: 7, type: 'query', data: { text: 'bad time' } },
    'not an event',
  ];

  it('shows the request, its notifications, the kubectl lines and the recent statements', () => {
    const out = formatDescribe(
      req,
      { kind: 'statements', statements: recentStatements(events), sessionUrl: 'https://c/ui/sessions/S1' },
      NOW,
    );
    expect(out).toContain('Requester:        shop/orders-agent');
    expect(out).toContain('Expires:          2030-01-01T12:09:00Z (in 9m)');
    expect(out).toContain('  - rule write-needs-approval');
    expect(out).toContain('dba-slack requested: Delivered (1 attempts)');
    expect(out).toContain('kubectl chaperone approve orders-db-1 -n shop');
    expect(out).toMatch(/11:58:01 +allowed +SELECT \* FROM orders/);
    expect(out).toMatch(/denied +DROP TABLE orders/);
    expect(out).toMatch(/paused +UPDATE orders/);
    expect(out).not.toContain('bad time');
  });

  it('without the collector it still shows the request and says why', () => {
    const out = formatDescribe(req, { kind: 'unavailable', reason: 'no collector configured' }, NOW);
    expect(out).toContain('Recent Statements: not shown: no collector configured');
  });

  it('escapes terminal control sequences from recorded text', () => {
    expect(printable('a\u001b[2Jb\tc')).toBe('a\\x1b[2Jb\tc');
    const hostile = recentStatements([
      { seq: 1, time: 't', type: 'query', data: { text: '\u001b]0;pwned\u0007' } },
    ]);
    const out = formatDescribe(req, { kind: 'statements', statements: hostile, sessionUrl: 'u' }, NOW);
    expect(out).not.toContain('\u001b');
  });

  it('watch lines line up under the table they follow', () => {
    const table = formatRequestsTable([req], { now: NOW, allNamespaces: false });
    const widths = tableWidths(table);
    const line = formatWatchLine(
      { ...req, status: { phase: 'Denied' } },
      { now: NOW, allNamespaces: false },
      widths,
    );
    expect(line.indexOf('Denied')).toBe(table.split('\n')[0]?.indexOf('PHASE'));
    expect(line.indexOf('orders-db ')).toBe(table.split('\n')[0]?.indexOf('CONNECTION'));
  });
});

describe('the requests table', () => {
  it('escapes terminal control sequences in the operation', () => {
    const hostile = {
      ...req,
      spec: { ...req.spec, operation: { ...req.spec.operation, text: 'SELECT "\u001b[2J"' } },
    };
    const out = formatRequestsTable([hostile], { now: NOW, allNamespaces: false });
    expect(out).not.toContain('\u001b');
    expect(out).toContain('\\x1b[2J');
  });
});
