import { describe, expect, it } from 'vitest';
import { applyVerdict, reviewedAttributes } from './access-review.js';

const review = (spec: object, status: object = { allowed: true, reason: 'RBAC: allowed' }) => ({
  kind: 'SelfSubjectAccessReview',
  apiVersion: 'authorization.k8s.io/v1',
  metadata: {},
  spec,
  status,
});

describe('reviewedAttributes', () => {
  it('reads resource and non-resource attributes from the echoed spec', () => {
    expect(
      reviewedAttributes(
        review({
          resourceAttributes: {
            verb: 'get',
            group: 'apps',
            version: 'v1',
            resource: 'deployments',
            subresource: 'scale',
            namespace: 'p',
            name: 'w',
          },
        }),
      ),
    ).toMatchObject({
      isResourceRequest: true,
      verb: 'get',
      apiGroup: 'apps',
      resource: 'deployments',
      subresource: 'scale',
      namespace: 'p',
      name: 'w',
    });
    expect(
      reviewedAttributes(review({ nonResourceAttributes: { verb: 'get', path: '/logs' } })),
    ).toMatchObject({
      isResourceRequest: false,
      verb: 'get',
      path: '/logs',
    });
  });
  it('ignores what is not a review answer', () => {
    expect(reviewedAttributes({ kind: 'Status', code: 403 })).toBe(undefined);
    expect(reviewedAttributes(review({}))).toBe(undefined);
    expect(reviewedAttributes('x')).toBe(undefined);
  });
});

describe('applyVerdict', () => {
  it('turns an RBAC yes into a policy no, naming the rule; leaves allowed answers alone', () => {
    const doc = review({ resourceAttributes: { verb: 'delete', resource: 'namespaces' } });
    expect(applyVerdict(doc, { allowed: false, reason: 'never', rule: 'r1' })).toBe(1);
    expect(doc.status).toEqual({
      allowed: false,
      denied: true,
      reason: 'chaperone policy: never (rule "r1")',
    });
    const ok = review({ resourceAttributes: { verb: 'get', resource: 'pods' } });
    expect(applyVerdict(ok, { allowed: true })).toBe(0);
    expect(ok.status).toEqual({ allowed: true, reason: 'RBAC: allowed' });
    const status = { kind: 'Status', code: 500 };
    expect(applyVerdict(status, { allowed: false })).toBe(0);
  });
});
