// AdmissionReview layer of the approval webhook on accessrequests/status: checks the review is what
// the webhook configuration promises, looks up the deciding AccessPolicy and hands everything to the
// pure decideStatusUpdate().

import type { AccessPolicy, AccessRequest } from '@chaperone/api';
import type { AdmissionHandler, AdmissionRequest, AdmissionVerdict } from '../admission/admission-review.js';
import { decideStatusUpdate, isOperator } from './decide-status-update.js';

export interface ApprovalHandlerOptions {
  /** The AccessPolicy `name` in `namespace`, or undefined if it does not exist (e.g. an informer cache). */
  lookupPolicy(namespace: string, name: string): AccessPolicy | undefined | Promise<AccessPolicy | undefined>;
  /** Usernames of the operator itself, e.g. `system:serviceaccount:chaperone-system:chaperone-operator`. */
  operatorUsernames: readonly string[];
  now?: () => Date;
}

const MISCONFIGURED =
  'the chaperone approval webhook only handles UPDATE of chaperone.dev accessrequests/status; ' +
  'fix the rules of the MutatingWebhookConfiguration that sent this review';

export function createApprovalHandler(opts: ApprovalHandlerOptions): AdmissionHandler {
  const now = opts.now ?? (() => new Date());
  return async (request: AdmissionRequest): Promise<AdmissionVerdict> => {
    const problem = checkReview(request);
    if (problem) return { allowed: false, code: 400, message: problem };
    const oldRequest = request.oldObject as AccessRequest;
    const newRequest = request.object as AccessRequest;
    const userInfo = request.userInfo;
    // The operator never needs the policy; don't let a lookup failure block its status writes.
    const policy = isOperator(userInfo, opts.operatorUsernames)
      ? undefined
      : await opts.lookupPolicy(
          request.namespace ?? oldRequest.metadata.namespace ?? '',
          oldRequest.spec.policy,
        );
    return decideStatusUpdate({
      oldRequest,
      newRequest,
      userInfo,
      policy,
      operatorUsernames: opts.operatorUsernames,
      now: now(),
    });
  };
}

/** What is wrong with the review, or undefined when it is a well-formed accessrequests/status UPDATE. */
function checkReview(request: AdmissionRequest): string | undefined {
  const kind = request.kind;
  if (kind?.group !== 'chaperone.dev' || kind.kind !== 'AccessRequest') {
    return `${MISCONFIGURED} (got kind ${kind?.group || 'core'}/${kind?.kind})`;
  }
  if (request.operation !== 'UPDATE' || request.subResource !== 'status') {
    return `${MISCONFIGURED} (got ${request.operation} of ${request.subResource ? `subresource ${request.subResource}` : 'the main resource'})`;
  }
  if (!request.userInfo || typeof request.userInfo.username !== 'string') {
    return 'the admission review has no userInfo.username; the API server always sends it';
  }
  for (const [field, value] of [
    ['object', request.object],
    ['oldObject', request.oldObject],
  ] as const) {
    const shape = accessRequestShapeProblem(value);
    if (shape) return `the admission review's request.${field} is not an AccessRequest: ${shape}`;
  }
  return undefined;
}

function accessRequestShapeProblem(value: unknown): string | undefined {
  if (!isRecord(value)) return 'missing';
  if (value.kind !== 'AccessRequest') return `kind is ${JSON.stringify(value.kind ?? null)}`;
  if (!isRecord(value.metadata) || typeof value.metadata.name !== 'string') return 'metadata.name is missing';
  const spec = value.spec;
  if (!isRecord(spec)) return 'spec is missing';
  if (typeof spec.policy !== 'string' || spec.policy === '') return 'spec.policy is missing';
  if (typeof spec.expiresAt !== 'string') return 'spec.expiresAt is missing';
  const requester = spec.requester;
  const sa = isRecord(requester) ? requester.serviceAccount : undefined;
  if (!isRecord(sa) || typeof sa.namespace !== 'string' || typeof sa.name !== 'string') {
    return 'spec.requester.serviceAccount is missing';
  }
  if (isRecord(requester) && requester.onBehalfOf !== undefined) {
    if (!isRecord(requester.onBehalfOf) || typeof requester.onBehalfOf.user !== 'string') {
      return 'spec.requester.onBehalfOf.user is missing';
    }
  }
  if (value.status !== undefined && !isRecord(value.status)) return 'status is not an object';
  if (
    isRecord(value.status) &&
    value.status.approvals !== undefined &&
    !Array.isArray(value.status.approvals)
  ) {
    return 'status.approvals is not a list';
  }
  // A malformed status.decision is reported by decideStatusUpdate, which knows whose it is.
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
