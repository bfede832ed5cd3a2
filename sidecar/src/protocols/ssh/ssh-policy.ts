// The SSH side of policy: the wire layer's operations as the policy engine's SshRequest, decided by
// the identity's applicable AccessPolicies (rules, then guardrails over the command's risks). Pure.
import type { AccessPolicy, Connection } from '@chaperone/api';
import type { Identity } from '../../identity/identity.js';
import type { PolicyViewFactory } from '../../pipeline/index.js';
import {
  type ApplicablePolicies,
  compilePolicies,
  type PolicyDecision,
  type SshRequest,
} from '../../policy/index.js';
import { commandRisks } from './command-risks.js';
import type { SshOperation } from './hooks.js';

export type SshPolicyView = Pick<ApplicablePolicies, 'names' | 'decide'>;

export function sshPolicyFactory(
  connection: Connection,
  policies: AccessPolicy[],
): PolicyViewFactory<SshPolicyView> {
  const engine = compilePolicies(policies, connection);
  return (identity: Identity) => {
    const view = engine.forIdentity(identity);
    return 'refused' in view ? { refused: view.refused } : view;
  };
}

/** How an operation reads in recordings, denials and approval requests. */
export function describeSshOperation(op: SshOperation): string {
  switch (op.kind) {
    case 'shell':
      return 'shell';
    case 'exec':
      return op.command;
    case 'subsystem':
      return `subsystem ${op.name}`;
    case 'port-forward':
      return `port-forward ${op.host}:${op.port}`;
    case 'sftp':
      return `sftp ${op.op} ${op.path}${op.targetPath !== undefined ? ` -> ${op.targetPath}` : ''}`;
  }
}

/** The policy engine's request for an operation, or undefined for what no rule can allow. */
export function toSshRequest(op: SshOperation): SshRequest | undefined {
  switch (op.kind) {
    case 'shell':
      return { type: 'ssh', operation: 'shell', risks: [] };
    case 'exec':
      return { type: 'ssh', operation: 'exec', command: op.command, risks: commandRisks(op.command) };
    case 'port-forward':
      return { type: 'ssh', operation: 'port-forward', target: `${op.host}:${op.port}`, risks: [] };
    case 'sftp':
      return { type: 'ssh', operation: 'sftp', risks: [] };
    case 'subsystem':
      // A raw sftp subsystem is sftp as a whole; other subsystems have no rule vocabulary.
      return op.name === 'sftp' ? { type: 'ssh', operation: 'sftp', risks: [] } : undefined;
  }
}

export function decideSshOperation(view: SshPolicyView, op: SshOperation): PolicyDecision {
  const request = toSshRequest(op);
  if (!request) {
    return { action: 'deny', reason: `the ${describeSshOperation(op)} is not supported through Chaperone` };
  }
  return view.decide(request);
}
