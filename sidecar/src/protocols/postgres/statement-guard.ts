import type { MaskingStrategy } from '@chaperone/api';
import type { ResultMasking } from '../../masking/index.js';
import type { PolicyViewFactory } from '../../pipeline/policy-view.js';
import type { FunctionFacts, RelationFacts } from './column-catalog.js';
import type { CopyFormat } from './masking/copy-masker.js';

/** The part of a statement that is safe to show approvers and to record (literals replaced). */
export interface OperationSummary {
  text: string;
  fingerprint: string;
  classes: string[];
  tables: string[];
  risks: string[];
}

/**
 * How to mask the rows of a COPY … TO, which come without a RowDescription: by 1-based column
 * position, or — for `COPY table TO` — by the table's columns, which the session looks up.
 */
export interface CopyMasking {
  columns: Array<{ position: number; strategy: MaskingStrategy }>;
  table?: string;
  format: CopyFormat;
}

/** Names the statement uses that only the catalog can judge (views, child tables, user functions). */
export interface CatalogQuestions {
  relations: string[];
  functions: string[];
}

export interface CatalogFacts {
  relations: RelationFacts[];
  functions: FunctionFacts[];
}

/** An error as the server words it: SQLSTATE, message and 1-based character position. */
export interface ServerError {
  code: string;
  message: string;
  position?: number;
}

export type GuardVerdict =
  | { action: 'allow'; rule: string; summary: OperationSummary; copy?: CopyMasking; ask?: CatalogQuestions }
  | {
      action: 'deny';
      reason: string;
      rule: string;
      summary: OperationSummary;
      /** The error PostgreSQL itself would give (a syntax error), sent instead of the policy's. */
      serverError?: ServerError;
    }
  | {
      action: 'approve';
      copy?: CopyMasking;
      ask?: CatalogQuestions;
      reason: string;
      rule: string;
      policy: string;
      approvers: { groups: string[]; users: string[] };
      timeoutMs: number;
      summary: OperationSummary;
    };

/** Policy for one authenticated session (identity × connection), consulted per statement. */
export interface SessionPolicy {
  /** Judges a simple-query string (all its statements) or the text of one Parse message. */
  check(sql: string): GuardVerdict;
  /**
   * Second look for a verdict that asked catalog questions: a view, child table or user function
   * over masked columns turns it into what `masking.leakage` says.
   */
  review(verdict: GuardVerdict, facts: CatalogFacts): GuardVerdict;
  readonly masking: ResultMasking;
}

/** Builds the session policy, or says why this identity may not use the connection at all. */
export type SessionPolicyFactory = PolicyViewFactory<SessionPolicy>;
