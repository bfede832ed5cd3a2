// Recordings for the UI tests, built like the sidecar builds them (test-support/recordings): a
// normal SQL session with an approval and a denial, one whose agent-controlled text is hostile
// markup, a terminal session, and a run of small sessions for paging.
import type { RecordingEvent } from '@chaperone/api';
import { RecordingBuilder, sqlSession, sshSession } from '../test-support/recordings.js';

const DAY = 24 * 3_600_000;
export const T0 = Date.parse('2025-03-01T10:00:00.000Z');

export const HOSTILE = {
  statement: '<script>alert(1)</script>',
  application: '"><img src=x onerror=alert(2)>',
  comment: "</pre><script>alert('c')</script>",
  user: '<b onmouseover=alert(3)>mallory</b>',
  reason: '<iframe src=javascript:alert(4)>',
};

export const ALICE = {
  serviceAccount: 'agents/orders-agent',
  pod: 'orders-agent-0',
  user: 'alice@example.com',
  groups: ['ops', 'dba'],
};

/** Sessions on connection `bulk-db`, one per hour, for paging. */
export const BULK_SESSIONS = 7;

export function uiRecordings(): RecordingEvent[][] {
  const sessions: RecordingEvent[][] = [];
  // A typical SQL session (11 events): masked SELECT, DELETE approved by bob, DROP denied.
  sessions.push(sqlSession('sql-alice', { identity: ALICE, startMs: T0 }));

  sessions.push(
    new RecordingBuilder('sql-hostile', {
      connection: 'billing-db',
      identity: { serviceAccount: 'agents/billing-agent', user: HOSTILE.user, groups: ['billing'] },
      startMs: T0 + DAY,
    })
      .add('session.start', {
        protocol: 'postgres',
        client: '127.0.0.1:42000',
        application: HOSTILE.application,
      })
      .add('credential.issued', { description: 'JIT role chaperone_billing' })
      .add(
        'query',
        {
          text: HOSTILE.statement,
          fingerprint: 'fp-x',
          classes: ['read'],
          tables: [],
          risks: [],
          decision: 'denied',
          reason: HOSTILE.reason,
        },
        { rule: 'billing/<no-script>' },
      )
      .add('result', { rows: 0, bytes: 0, maskedValues: 0, error: `chaperone: ${HOSTILE.reason}` })
      .add('query', {
        text: 'UPDATE invoices SET paid = true',
        fingerprint: 'fp-u',
        classes: ['write'],
        tables: ['public.invoices'],
        risks: [],
        decision: 'pending',
      })
      .add('approval.requested', {
        request: 'ar-9',
        text: 'UPDATE invoices SET paid = true',
        reasons: ['write'],
      })
      .add(
        'approval.decided',
        { request: 'ar-9', verdict: 'denied', by: HOSTILE.user, comment: HOSTILE.comment },
        { afterMs: 2_000 },
      )
      .add('session.end', { reason: 'client closed', statements: 2, durationMs: 2_100 }).events,
  );

  sessions.push(
    sshSession('ssh-ops', {
      identity: { serviceAccount: 'agents/ops-agent', pod: 'ops-agent-0', groups: ['ops'] },
      startMs: T0 + 2 * DAY,
    }),
  );

  for (let i = 0; i < BULK_SESSIONS; i++) {
    sessions.push(
      new RecordingBuilder(`bulk-${i}`, {
        connection: 'bulk-db',
        identity: { serviceAccount: 'agents/batch', groups: [] },
        startMs: T0 - 10 * DAY + i * 3_600_000,
      })
        .add('session.start', { protocol: 'postgres', client: '127.0.0.1:43000' })
        .add('query', {
          text: `SELECT ${i}`,
          fingerprint: 'fp-n',
          classes: ['read'],
          tables: [],
          risks: [],
          decision: 'allowed',
        })
        .add('session.end', { reason: 'client closed', statements: 1, durationMs: 30 }).events,
    );
  }
  return sessions;
}
