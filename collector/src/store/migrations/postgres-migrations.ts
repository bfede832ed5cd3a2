import type { Migration } from './migration.js';

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'events, session summaries, subjects',
    statements: [
      `CREATE TABLE events (
        session_id text NOT NULL,
        seq bigint NOT NULL,
        time timestamptz NOT NULL,
        type text NOT NULL,
        connection text NOT NULL,
        service_account text,
        user_name text,
        groups text NOT NULL,
        decision text,
        rule text,
        text text,
        hash text NOT NULL,
        canonical text NOT NULL,
        ingested_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (session_id, seq)
      )`,
      `CREATE TABLE sessions (
        session_id text PRIMARY KEY,
        connection text NOT NULL,
        protocol text,
        client text,
        application text,
        service_account text,
        pod text,
        user_name text,
        groups text NOT NULL,
        start_time timestamptz NOT NULL,
        end_time timestamptz NOT NULL,
        ended boolean NOT NULL DEFAULT false,
        end_reason text,
        events integer NOT NULL,
        max_seq bigint NOT NULL,
        statements integer NOT NULL,
        allowed integer NOT NULL,
        denied integer NOT NULL,
        approved integer NOT NULL,
        masked_values bigint NOT NULL
      )`,
      'CREATE INDEX sessions_by_start ON sessions (start_time, session_id)',
      'CREATE INDEX sessions_by_connection ON sessions (connection, start_time, session_id)',
      'CREATE INDEX sessions_by_end ON sessions (end_time)',
      'CREATE INDEX sessions_allowed ON sessions (start_time, session_id) WHERE allowed > 0',
      'CREATE INDEX sessions_denied ON sessions (start_time, session_id) WHERE denied > 0',
      'CREATE INDEX sessions_approved ON sessions (start_time, session_id) WHERE approved > 0',
      'CREATE INDEX sessions_masked ON sessions (start_time, session_id) WHERE masked_values > 0',
      `CREATE TABLE session_subjects (
        kind text NOT NULL,
        value text NOT NULL,
        session_id text NOT NULL,
        start_time timestamptz NOT NULL,
        PRIMARY KEY (kind, value, session_id)
      )`,
      'CREATE INDEX session_subjects_by_start ON session_subjects (kind, value, start_time, session_id)',
      'CREATE INDEX session_subjects_by_session ON session_subjects (session_id)',
      // Statement text search: one row per session and batch holding that batch's statements of
      // the session, one per line (see the SQLite schema for why not one per event).
      `CREATE TABLE statement_chunks (
        id bigserial PRIMARY KEY,
        session_id text NOT NULL,
        text text NOT NULL
      )`,
      'CREATE INDEX statement_chunks_by_session ON statement_chunks (session_id)',
    ],
  },
  {
    version: 2,
    name: 'statement text index (pg_trgm when it can be installed)',
    statements: [
      // pg_trgm is a trusted extension (PostgreSQL >= 13): a database owner may create it. Where
      // even that is not allowed, text search still works, as an ILIKE scan without an index.
      `DO $$ BEGIN
         CREATE EXTENSION IF NOT EXISTS pg_trgm;
       EXCEPTION WHEN OTHERS THEN
         RAISE NOTICE 'pg_trgm unavailable (%): statement text search will scan', SQLERRM;
       END $$`,
      `DO $$ BEGIN
         IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
           CREATE INDEX statement_chunks_trgm ON statement_chunks USING gin (text gin_trgm_ops);
         END IF;
       END $$`,
    ],
  },
  {
    version: 3,
    name: 'approval events by time (the approvals page)',
    statements: ['CREATE INDEX IF NOT EXISTS events_by_type_time ON events (type, time)'],
  },
];
