import type { RecordingEvent } from '@chaperone/api';

/** An event that passed validation, with the exact text its hash covers. */
export interface PreparedEvent {
  readonly event: RecordingEvent;
  /** canonicalJson(event): what the producer hashed, stored verbatim. */
  readonly canonical: string;
  /** sha256 hex of `canonical`, recorded at ingest so that a later edit of the text shows. */
  readonly hash: string;
}

export interface EventKey {
  sessionId: string;
  seq: number;
}

export interface AppendResult {
  /** Events written by this call. */
  stored: number;
  /** Events already present with identical content (a retry); acknowledged, not stored again. */
  duplicates: number;
  /**
   * Events whose (session, seq) is already taken by different content. The first write wins (the
   * store is append-only); they are acknowledged so that a producer cannot wedge on them, and
   * verification will show the session's chain as broken if the producer's history diverged.
   */
  conflicts: EventKey[];
}

export type DecisionFilter = 'allowed' | 'denied' | 'approved' | 'masked';
export const DECISION_FILTERS: readonly DecisionFilter[] = ['allowed', 'denied', 'approved', 'masked'];

/** Position in the newest-first session order: (start time, session id) of the last row seen. */
export interface SessionCursor {
  startMs: number;
  sessionId: string;
}

export interface SessionQuery {
  /** A ServiceAccount (`namespace/name`) or a user, exactly. */
  identity?: string;
  group?: string;
  /** Kubernetes sessions with at least one API request of this verb ('delete'), exactly. */
  verb?: string;
  /** … on this resource ('pods', without group or subresource), exactly. */
  resource?: string;
  /** … in this namespace, exactly. */
  namespace?: string;
  connection?: string;
  /** Sessions that were active at some point in [from, to]. */
  from?: Date;
  to?: Date;
  decision?: DecisionFilter;
  /** Case-insensitive substring of a statement, at least 3 characters. */
  text?: string;
  limit: number;
  cursor?: SessionCursor;
}

export interface SessionSummary {
  sessionId: string;
  connection: string;
  protocol: string | null;
  client: string | null;
  application: string | null;
  identity: { serviceAccount: string | null; pod: string | null; user: string | null; groups: string[] };
  /** Time of the earliest stored event (the session.start, once it has arrived). */
  startTime: string;
  /** Time of the latest stored event. */
  endTime: string;
  /** A session.end event has been stored. */
  ended: boolean;
  endReason: string | null;
  events: number;
  lastSeq: number;
  /** lastSeq + 1 - events: sequence numbers not (yet) received. */
  missingEvents: number;
  counts: { statements: number; allowed: number; denied: number; approved: number; maskedValues: number };
}

export interface SessionPage {
  sessions: SessionSummary[];
  nextCursor: SessionCursor | null;
}

export interface StoredEvent {
  sessionId: string;
  seq: number;
  hash: string;
  canonical: string;
}

/** Sessions started in one bucket of the activity chart, with their denials and approvals. */
export interface ActivityBucket {
  /** Start of the bucket, epoch ms. */
  startMs: number;
  sessions: number;
  denied: number;
  approved: number;
}

/** Keep sessions whose last event is younger than the age given for their connection. */
export interface RetentionPolicy {
  perConnection: ReadonlyMap<string, number>;
  /** Age in ms for connections without their own entry; none keeps them forever. */
  defaultMs?: number;
}

export interface RetentionResult {
  sessions: number;
  events: number;
}

export interface MigrationResult {
  /** Versions applied by this call (empty when the schema was current). */
  applied: number[];
  version: number;
}

/**
 * Where recordings live. Append-only: the only deletion is retention, which removes whole sessions
 * so that every chain that remains is complete. Implementations: SqliteEventStore (embedded, one
 * process) and PostgresEventStore (shared by several collector replicas).
 */
export interface EventStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Applies pending schema migrations; safe to call at every start and from several replicas. */
  migrate(): Promise<MigrationResult>;
  /** The schema version the database is at (0 when never migrated). */
  schemaVersion(): Promise<number>;
  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  /** Stores a batch atomically: either every new event of it is stored, or none is. */
  appendBatch(events: readonly PreparedEvent[]): Promise<AppendResult>;
  /** Newest first, keyset-paginated on (start time, session id). */
  searchSessions(query: SessionQuery): Promise<SessionPage>;
  getSession(sessionId: string): Promise<SessionSummary | undefined>;
  /** Events of a session in seq order, from the first seq greater than `afterSeq`. */
  sessionEvents(sessionId: string, opts: { afterSeq?: number; limit: number }): Promise<StoredEvent[]>;
  /** approval.requested and approval.decided events at or after `since`, newest first. */
  approvalEvents(opts: { since: Date; limit: number }): Promise<StoredEvent[]>;
  /** Sessions started in [from, to), counted per bucket of bucketMs (empty buckets omitted). */
  activity(opts: { from: Date; to: Date; bucketMs: number }): Promise<ActivityBucket[]>;
  applyRetention(policy: RetentionPolicy, now: Date): Promise<RetentionResult>;
  close(): Promise<void>;
}

export const SCHEMA_NEWER_ERROR = (found: number, known: number) =>
  `the database schema is at version ${found}, newer than this collector knows (${known}); upgrade the collector`;
