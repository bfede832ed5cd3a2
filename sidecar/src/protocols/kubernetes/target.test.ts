import type { Connection } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { kubernetesTargetOf } from './target.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const conn = (endpoint: Connection['spec']['endpoint']): Connection =>
  ({
    apiVersion: 'chaperone.dev/v1alpha1',
    kind: 'Connection',
    metadata: { name: 'cluster' },
    spec: { type: 'kubernetes', endpoint, listen: { port: 16443 }, credentials: {} },
  }) as Connection;

describe('kubernetesTargetOf', () => {
  it('decodes caBundle, and leaves the trust store to Node when there is none', () => {
    const b64 = Buffer.from(PEM).toString('base64');
    expect(kubernetesTargetOf(conn({ url: 'https://10.0.0.1:6443', caBundle: b64 }), undefined)).toEqual({
      url: 'https://10.0.0.1:6443',
      ca: PEM,
    });
    expect(kubernetesTargetOf(conn({ url: 'https://kubernetes.default.svc' }), undefined)).toEqual({
      url: 'https://kubernetes.default.svc',
    });
  });

  it('fails closed on http, a missing URL, skipped verification and a CA that is not PEM', () => {
    expect(() => kubernetesTargetOf(conn({ url: 'http://10.0.0.1' }), undefined)).toThrow(/https/);
    expect(() => kubernetesTargetOf(conn({}), undefined)).toThrow(/url is required/);
    expect(() =>
      kubernetesTargetOf(conn({ url: 'https://x', insecureSkipTLSVerify: true }), undefined),
    ).toThrow(/insecureSkipTLSVerify/);
    expect(() =>
      kubernetesTargetOf(
        conn({ url: 'https://x', caBundle: Buffer.from('junk').toString('base64') }),
        undefined,
      ),
    ).toThrow(/PEM/);
  });
});
