export { type OidcIssuerConfig, OidcVerifier } from '@chaperone/api';
export { buildCollector, type Collector, type CollectorConfig } from './app.js';
export { type Auditor, AuditorAuthenticator } from './auth/auditor-auth.js';
export { IngestAuthenticator, type IngestPrincipal } from './auth/ingest-auth.js';
export { COLLECTOR_AUDIENCE, TokenReviewAuthenticator } from './auth/token-review.js';
export { toAsciicast } from './replay/asciicast.js';
export { toSqlTranscript } from './replay/sql-transcript.js';
export { parseDuration, parseRetention } from './retention/retention-policy.js';
export type * from './store/event-store.js';
export { openStore, parseStoreLocation, type StoreLocation } from './store/open-store.js';
export { PostgresEventStore } from './store/postgres-store.js';
export { SqliteEventStore } from './store/sqlite-store.js';
// A recorded session of known shape, for benchmarks and other packages' tests.
export { workloadSession } from './test-support/workload.js';
export {
  type ChainProblem,
  ChainVerifier,
  type RangeVerification,
  type SessionVerification,
  verifyRange,
  verifySession,
} from './verify/chain.js';
