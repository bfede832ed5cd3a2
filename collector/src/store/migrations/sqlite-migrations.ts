import type { Migration } from './migration.js';

// Times are INTEGER epoch milliseconds (ISO strings with zones do not sort as text).
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'events, session summaries, subjects, statement text index',
    statements: [
      `CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        type TEXT NOT NULL,
        connection TEXT NOT NULL,
        service_account TEXT,
        user_name TEXT,
        groups TEXT NOT NULL,
        decision TEXT,
        rule TEXT,
        text TEXT,
        hash TEXT NOT NULL,
        canonical TEXT NOT NULL,
        ingested_ms INTEGER NOT NULL,
        UNIQUE (session_id, seq)
      )`,
      // Statement text search: trigram FTS gives case-insensitive substring search with an index,
      // the semantics of ILIKE '%…%' over pg_trgm in PostgreSQL. One document per session and
      // batch (the batch's statements of that session, one per line) instead of one per event:
      // a common term then matches thousands of documents rather than hundreds of thousands of
      // events, and ingest pays the per-document cost once per batch. Contentless (the text is in
      // events already); contentless_delete lets retention remove documents.
      `CREATE TABLE statement_chunks (id INTEGER PRIMARY KEY, session_id TEXT NOT NULL)`,
      'CREATE INDEX statement_chunks_by_session ON statement_chunks (session_id)',
      `CREATE VIRTUAL TABLE statement_text USING fts5(text, tokenize = 'trigram', content = '', contentless_delete = 1)`,
      `CREATE TABLE sessions (
        session_id TEXT PRIMARY KEY,
        connection TEXT NOT NULL,
        protocol TEXT,
        client TEXT,
        application TEXT,
        service_account TEXT,
        pod TEXT,
        user_name TEXT,
        groups TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        ended INTEGER NOT NULL DEFAULT 0,
        end_reason TEXT,
        events INTEGER NOT NULL,
        max_seq INTEGER NOT NULL,
        statements INTEGER NOT NULL,
        allowed INTEGER NOT NULL,
        denied INTEGER NOT NULL,
        approved INTEGER NOT NULL,
        masked_values INTEGER NOT NULL
      )`,
      'CREATE INDEX sessions_by_start ON sessions (start_ms, session_id)',
      'CREATE INDEX sessions_by_connection ON sessions (connection, start_ms, session_id)',
      'CREATE INDEX sessions_by_end ON sessions (end_ms)',
      // Decision facets are rare compared with all sessions: partial indexes keep those searches
      // from walking every session to fill a page.
      'CREATE INDEX sessions_allowed ON sessions (start_ms, session_id) WHERE allowed > 0',
      'CREATE INDEX sessions_denied ON sessions (start_ms, session_id) WHERE denied > 0',
      'CREATE INDEX sessions_approved ON sessions (start_ms, session_id) WHERE approved > 0',
      'CREATE INDEX sessions_masked ON sessions (start_ms, session_id) WHERE masked_values > 0',
      `CREATE TABLE session_subjects (
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        session_id TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        PRIMARY KEY (kind, value, session_id)
      ) WITHOUT ROWID`,
      'CREATE INDEX session_subjects_by_start ON session_subjects (kind, value, start_ms, session_id)',
      'CREATE INDEX session_subjects_by_session ON session_subjects (session_id)',
    ],
  },
  {
    version: 2,
    name: 'approval events by time (the approvals page)',
    statements: ['CREATE INDEX events_by_type_time ON events (type, time_ms)'],
  },
];
