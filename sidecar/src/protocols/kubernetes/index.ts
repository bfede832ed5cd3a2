// Kubernetes API gateway: see docs/kubernetes-gateway.md. `kubernetesProtocol` is what the registry
// serves; the wire layer below it is exported for tests and the benchmark.

import type { ProtocolModule } from '../types.js';
import { startKubeGateway } from './kube-gateway.js';
import { type KubernetesView, kubernetesPolicyFactory } from './kubernetes-policy.js';
import { pipelineHooks } from './pipeline-hooks.js';
import { type KubeTarget, kubernetesTargetOf } from './target.js';

/** The Kubernetes API gateway as the registry sees it. */
export const kubernetesProtocol: ProtocolModule<KubeTarget, KubernetesView> = {
  type: 'kubernetes',
  supported: true,
  prepare: async () => {},
  ready: () => true,
  targetOf: kubernetesTargetOf,
  policyView: kubernetesPolicyFactory,
  async startGateway(served, ctx) {
    const glue = pipelineHooks(served, ctx);
    const gw = await startKubeGateway({
      upstreamUrl: served.target.url,
      upstreamCa: served.target.ca,
      hooks: glue.hooks,
      host: ctx.listenHost,
      port: served.listenPort,
      limits: { maxConnections: ctx.maxConnections },
    });
    return {
      port: gw.port,
      get activeSessions() {
        return glue.activeSessions;
      },
      async close() {
        await gw.close();
        glue.endAll('sidecar stopped');
      },
    };
  },
};

export type { PolicyVerdict } from './access-review.js';
export type {
  KubeAgentIdentity,
  KubeDecision,
  KubeExecSummary,
  KubeGatewayHooks,
  KubeRecordEvent,
  KubeRequestContext,
} from './hooks.js';
export {
  type KubeGateway,
  type KubeGatewayLimits,
  type KubeGatewayOptions,
  startKubeGateway,
} from './kube-gateway.js';
export type { KubernetesView } from './kubernetes-policy.js';
export { deriveAttributes, describeAttributes, type KubeRequestAttributes } from './request-attributes.js';
export { referencedSecrets, requestRisks } from './request-risks.js';
export { normaliseRequestTarget, type RequestTarget } from './request-target.js';
export {
  REDACTED,
  REDACTED_DATA,
  type RevealSecret,
  redactSecretDocument,
  type SecretIdentity,
} from './secret-redaction.js';
export type { KubeTarget } from './target.js';
