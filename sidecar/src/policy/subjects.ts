import type { PolicySubject } from '@chaperone/api';
import type { Identity } from './types.js';

/**
 * Whether one subject names the identity. ServiceAccount: same namespace (the subject's, else the
 * policy's) and name. Group: one of the identity's OIDC groups. User: the identity's OIDC user.
 * Names compare exactly, as RBAC compares them.
 */
export function subjectMatches(subject: PolicySubject, identity: Identity, policyNamespace: string): boolean {
  switch (subject.kind) {
    case 'ServiceAccount': {
      const sa = identity.serviceAccount;
      return (
        sa !== undefined &&
        sa.name === subject.name &&
        sa.namespace === (subject.namespace ?? policyNamespace)
      );
    }
    case 'Group':
      return Array.isArray(identity.groups) && identity.groups.includes(subject.name);
    case 'User':
      return identity.user !== undefined && identity.user === subject.name;
    default:
      // A kind this sidecar does not know (newer CRD, hand-written YAML) names nobody: fail closed.
      return false;
  }
}

export function anySubjectMatches(
  subjects: readonly PolicySubject[] | undefined,
  identity: Identity,
  policyNamespace: string,
): boolean {
  return (subjects ?? []).some((s) => subjectMatches(s, identity, policyNamespace));
}
