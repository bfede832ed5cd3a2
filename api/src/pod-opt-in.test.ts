import { describe, expect, it } from 'vitest';
import {
  ALLOWED_NAMESPACES_ANNOTATION,
  adminSecretRefusal,
  CONNECTIONS_ANNOTATION,
  INJECT_LABEL,
  INJECT_LABEL_DISABLED,
  INJECT_LABEL_VALUE,
  parseConnectionsAnnotation,
  STATUS_ANNOTATION,
} from './pod-opt-in.js';

describe('pod opt-in keys', () => {
  it('live under chaperone.dev', () => {
    for (const key of [INJECT_LABEL, CONNECTIONS_ANNOTATION, STATUS_ANNOTATION])
      expect(key).toMatch(/^chaperone\.dev\//);
  });

  it('opts in and out with distinct values of the same pod label', () => {
    // Label values must be valid Kubernetes label values and must differ, or opt-out would opt in.
    for (const value of [INJECT_LABEL_VALUE, INJECT_LABEL_DISABLED])
      expect(value).toMatch(/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/);
    expect(INJECT_LABEL_DISABLED).not.toBe(INJECT_LABEL_VALUE);
  });

  it('parses the connections annotation', () => {
    expect(parseConnectionsAnnotation(undefined)).toEqual([]);
    expect(parseConnectionsAnnotation('')).toEqual([]);
    expect(parseConnectionsAnnotation('orders-db,bastion')).toEqual(['orders-db', 'bastion']);
    expect(parseConnectionsAnnotation(' orders-db , ,bastion,orders-db ')).toEqual(['orders-db', 'bastion']);
  });
});

describe('adminSecretRefusal', () => {
  const secret = (value?: string) => ({
    namespace: 'chaperone-system',
    name: 'orders-db-admin',
    ...(value === undefined ? {} : { annotations: { [ALLOWED_NAMESPACES_ANNOTATION]: value } }),
  });

  it.each<[string | undefined, string, boolean]>([
    [undefined, 'shop', false],
    ['', 'shop', false],
    ['shop', 'shop', true],
    [' shop , billing ', 'billing', true],
    ['shop,billing', 'other', false],
    ['*', 'anything', true],
    ['shop*', 'shopping', false],
  ])('annotation %j, namespace %s → allowed %s', (value, ns, allowed) => {
    expect(adminSecretRefusal(secret(value), ns) === undefined).toBe(allowed);
  });

  it('tells the user the exact command to allow the namespace', () => {
    expect(adminSecretRefusal(secret(), 'shop')).toContain(
      `kubectl -n chaperone-system annotate secret orders-db-admin ${ALLOWED_NAMESPACES_ANNOTATION}=shop --overwrite`,
    );
    expect(adminSecretRefusal(secret('billing'), 'shop')).toContain(
      `${ALLOWED_NAMESPACES_ANNOTATION}=billing,shop`,
    );
  });
});
