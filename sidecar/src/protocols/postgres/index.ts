import type { ProtocolModule } from '../types.js';
import { LocalCancelRegistry, PostgresGateway } from './gateway.js';
import { postgresPolicyFactory } from './postgres-policy.js';
import { initSqlParser, sqlParserHealth } from './sql/index.js';
import type { SessionPolicy } from './statement-guard.js';
import { postgresTargetOf } from './target.js';
import type { UpstreamTarget } from './upstream.js';

// Backend keys handed to agents are unique across every postgres listener of the process.
const cancels = new LocalCancelRegistry();

/** The PostgreSQL gateway as the registry sees it. */
export const postgresProtocol: ProtocolModule<UpstreamTarget, SessionPolicy> = {
  type: 'postgres',
  supported: true,
  // The SQL parser is WebAssembly: load it before the first agent connects.
  prepare: () => initSqlParser(),
  // A fault inside the parser's WebAssembly marks it unusable: report not-ready so the pod restarts.
  ready: () => sqlParserHealth().ok,
  targetOf: postgresTargetOf,
  policyView: postgresPolicyFactory,
  async startGateway(served, ctx) {
    const gw = new PostgresGateway({
      connection: served.name,
      target: served.target,
      listenHost: ctx.listenHost,
      listenPort: served.listenPort,
      podIdentity: ctx.podIdentity,
      credentials: ctx.credentials,
      policyFor: served.policyFor,
      approvals: ctx.approvals,
      recorderFor: ctx.recorderFor,
      cancels,
      tokenVerifier: ctx.tokenVerifier,
      requireToken: ctx.requireToken,
      tokenUser: ctx.tokenUser,
      maxMessageBytes: ctx.maxMessageBytes,
      clientTls: ctx.clientTls,
      maxConnections: ctx.maxConnections,
      hashKey: ctx.hashKey,
      log: ctx.log,
    });
    await gw.listen();
    return gw;
  },
};
