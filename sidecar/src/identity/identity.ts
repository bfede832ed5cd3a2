/** Who is behind a session: the pod's ServiceAccount, and the person or pipeline it acts for, if any. */
export interface Identity {
  /** The pod's ServiceAccount (standalone mode: from the sidecar's configuration). */
  serviceAccount?: { namespace: string; name: string };
  pod?: { name: string; namespace?: string; uid?: string };
  /** From a verified OIDC ID token the agent presented, if it presented one. */
  user?: string;
  groups: string[];
  /** The token's issuer, when the identity came from OIDC. */
  issuer?: string;
}

/** A short label for logs and notices: "alice (agents/orders-agent)". */
export function describeIdentity(id: Identity): string {
  const sa = id.serviceAccount ? `${id.serviceAccount.namespace}/${id.serviceAccount.name}` : undefined;
  if (id.user && sa) return `${id.user} via ${sa}`;
  return id.user ?? sa ?? 'anonymous';
}
