import { randomBytes } from 'node:crypto';
import { serialize } from 'pg-protocol';
import type { ServerError } from './statement-guard.js';
import { Frontend, SqlState } from './wire/codes.js';
import { BodyReader } from './wire/message-reader.js';

interface Denial {
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  position?: number;
}

const STAND_IN = /CHAPERONE_DENIED_([0-9a-f]{16})/;

/**
 * A denied statement is not dropped: a stand-in whose SQL is a unique syntax error goes upstream in
 * its place, so the server's transaction state and message ordering stay exactly what the client
 * expects. The server's error for it is then rewritten into the denial (see `take`).
 */
export class DenialStandIns {
  /** Nonces of stand-ins sent upstream → the denial their error becomes. */
  private readonly denials = new Map<string, Denial>();

  /**
   * A Query or Parse (same statement name as `raw`, if it was a Parse) standing in for the denied
   * one. `serverError`, when given, is what the client gets instead of the policy's refusal.
   */
  standIn(raw: Buffer | undefined, reason: string, rule: string, serverError?: ServerError): Buffer {
    const nonce = randomBytes(8).toString('hex');
    const sql = `CHAPERONE_DENIED_${nonce}`;
    this.denials.set(
      nonce,
      serverError ?? {
        code: SqlState.insufficientPrivilege,
        message: `chaperone: ${reason}`,
        detail: `Denied by policy rule ${rule}.`,
        hint: 'Ask your platform team for access, or for an approver if the rule asks for approval.',
      },
    );
    if (raw?.[0] === Frontend.Parse) {
      const r = new BodyReader(raw.subarray(5));
      const name = r.cstring();
      return serialize.parse({ name, text: sql });
    }
    return serialize.query(sql);
  }

  /** The denial an ErrorResponse message stands for (and forgets it), if it came from a stand-in. */
  take(errorMessage: string | undefined): Denial | undefined {
    const m = STAND_IN.exec(errorMessage ?? '');
    if (!m?.[1]) return undefined;
    const denial = this.denials.get(m[1]);
    this.denials.delete(m[1]);
    return denial;
  }

  /** Stand-ins the server skipped (after an earlier error) will never report back. */
  clear(): void {
    this.denials.clear();
  }
}
