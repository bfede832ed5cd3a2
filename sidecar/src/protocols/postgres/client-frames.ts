import { serialize } from 'pg-protocol';
import type { PostgresSessionState } from './session-state.js';
import type { CopyMasking, GuardVerdict } from './statement-guard.js';
import * as msg from './wire/backend-messages.js';
import { Frontend } from './wire/codes.js';
import { BodyReader, type Frame, ProtocolError } from './wire/message-reader.js';

type Forward = (raw: Buffer, allowed: boolean, copy?: CopyMasking) => void;

/**
 * Handles one client frame (the client half of the frame state machine); returns a promise when
 * the session must wait (catalog look-ups, approvals). Runs per message: no closures beyond the
 * `forward` of a statement that is judged, no awaits.
 */
export function onClientFrame(s: PostgresSessionState, f: Frame): Promise<void> | undefined {
  if (!s.upstream) return undefined;
  const q = s.query;
  switch (f.type) {
    case Frontend.Query: {
      const sql = new BodyReader(f.body).cstring();
      return gate(s, sql, f.raw, (raw, allowed, copy) => {
        q.pending.push({ kind: 'query', copy: allowed ? copy : undefined });
        s.sendUp(raw);
      });
    }
    case Frontend.Parse: {
      const r = new BodyReader(f.body);
      const name = r.cstring();
      const sql = r.cstring();
      return gate(s, sql, f.raw, (raw, allowed) => {
        if (allowed) q.statements.set(name, { text: sql });
        q.pending.push({ kind: 'parse', statement: name });
        s.sendUp(raw);
      });
    }
    case Frontend.Bind:
      q.bind(f.body);
      s.sendUp(f.raw);
      return undefined;
    case Frontend.Describe:
      q.describe(f.body);
      s.sendUp(f.raw);
      return undefined;
    case Frontend.Execute:
      onExecute(s, f);
      return undefined;
    case Frontend.Close:
      q.close(f.body);
      s.sendUp(f.raw);
      return undefined;
    case Frontend.Sync:
      q.pending.push({ kind: 'sync' });
      s.sendUp(f.raw);
      return undefined;
    case Frontend.Flush:
    case Frontend.CopyData:
    case Frontend.CopyDone:
    case Frontend.CopyFail:
      s.sendUp(f.raw);
      return undefined;
    case Frontend.Terminate:
      s.sendUp(f.raw);
      s.close('client terminated');
      return undefined;
    case Frontend.FunctionCall:
      // Fast-path calls name functions by OID (lo_import and friends): no text to judge, so no.
      return gateDenied(
        s,
        'fast-path function call',
        'function calls through the fast-path interface are not allowed through Chaperone',
      );
    default:
      throw new ProtocolError(`unknown message type ${String.fromCharCode(f.type)}`);
  }
}

function onExecute(s: PostgresSessionState, f: Frame): void {
  const q = s.query;
  const portalName = new BodyReader(f.body).cstring();
  const portal = q.portals.get(portalName);
  const stmt = portal ? q.statements.get(portal.statement) : undefined;
  // Masking needs the row layout; a client that executes without ever describing gets a
  // hidden Describe first, whose answer we keep for ourselves.
  if (s.masks && portal && stmt && !portal.layout && !stmt.columns) {
    q.pending.push({ kind: 'describe-statement', statement: portal.statement, hidden: true });
    s.sendUp(serialize.describe({ type: 'S', name: portal.statement }));
  }
  q.pending.push({ kind: 'execute', portal: portalName });
  s.sendUp(f.raw);
}

/**
 * Decides a statement text. Allowed: forward as is. Denied: forward a stand-in that fails on
 * the server at the same place in the stream, so the server's transaction state and message
 * ordering stay exactly what the client expects; its error is rewritten into our denial.
 * Approval: tell the client at once, wait, then one of the two.
 */
function gate(
  s: PostgresSessionState,
  sql: string,
  raw: Buffer,
  forward: Forward,
): Promise<void> | undefined {
  const policy = s.policy;
  if (!policy) return undefined;
  s.pipeline.operations++;
  const verdict = policy.check(sql);
  // DDL may rename or drop what cached column origins point at.
  if (verdict.summary.classes.includes('ddl')) s.catalog?.invalidate();
  if (verdict.action !== 'deny' && verdict.ask && s.catalog) {
    // Views, child tables and user functions over masked columns: only the catalog can tell.
    const catalog = s.catalog;
    const ask = verdict.ask;
    return Promise.all([
      catalog.inspectRelations(ask.relations),
      catalog.inspectFunctions(ask.functions),
    ]).then(([relations, functions]) =>
      decide(s, policy.review(verdict, { relations, functions }), raw, forward),
    );
  }
  return decide(s, verdict, raw, forward);
}

function decide(
  s: PostgresSessionState,
  verdict: GuardVerdict,
  raw: Buffer,
  forward: Forward,
): Promise<void> | undefined {
  if (verdict.action === 'allow') {
    recordQuery(s, verdict, 'allowed');
    forward(raw, true, verdict.copy);
    return undefined;
  }
  if (verdict.action === 'deny') {
    recordQuery(s, verdict, 'denied', verdict.reason);
    forward(s.denials.standIn(raw, verdict.reason, verdict.rule, verdict.serverError), false);
    return undefined;
  }
  return awaitApproval(s, verdict, raw, forward);
}

/** Denies a message that has no SQL text to judge, in the simple-query shape the client expects. */
function gateDenied(s: PostgresSessionState, operation: string, reason: string): undefined {
  s.pipeline.record('denied', { operation, reason });
  s.query.pending.push({ kind: 'query' });
  s.sendUp(s.denials.standIn(undefined, reason, 'gateway'));
  return undefined;
}

/** The pipeline waits for the decision; the agent meanwhile gets a NoticeResponse naming the request. */
async function awaitApproval(
  s: PostgresSessionState,
  verdict: Extract<GuardVerdict, { action: 'approve' }>,
  raw: Buffer,
  forward: Forward,
): Promise<void> {
  recordQuery(s, verdict, 'pending', verdict.reason);
  const result = await s.pipeline.awaitApproval(
    {
      policy: verdict.policy,
      rule: verdict.rule,
      reason: verdict.reason,
      approvers: verdict.approvers,
      timeoutMs: verdict.timeoutMs,
      operation: {
        type: 'postgres',
        text: verdict.summary.text,
        fingerprint: verdict.summary.fingerprint,
        class: verdict.summary.classes.join(','),
        riskReasons: verdict.summary.risks,
      },
    },
    (notice) =>
      s.client.write(
        msg.noticeResponse({ code: '00000', message: notice.message, hint: notice.howToApprove }),
      ),
    (onGone) => {
      s.client.once('close', onGone);
      return () => s.client.off('close', onGone);
    },
  );
  if (result === 'gone') return;
  if (result === 'approved') forward(raw, true, verdict.copy);
  else forward(s.denials.standIn(raw, result.message, verdict.rule), false);
}

function recordQuery(
  s: PostgresSessionState,
  verdict: GuardVerdict,
  decision: 'allowed' | 'denied' | 'pending',
  reason?: string,
): void {
  s.results.flushCoalesced();
  s.pipeline.record(
    'query',
    {
      text: verdict.summary.text,
      fingerprint: verdict.summary.fingerprint,
      classes: verdict.summary.classes,
      tables: verdict.summary.tables,
      risks: verdict.summary.risks,
      decision,
      reason,
    },
    verdict.rule,
  );
}
