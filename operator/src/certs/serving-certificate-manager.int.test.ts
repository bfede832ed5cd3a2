import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { type ControlPlane, startControlPlane } from '@chaperone/testkit';
import * as k8s from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OperatorHttpsServer } from '../admission/https-server.js';
import { FIELD_MANAGER } from '../operator-constants.js';
import type { CertificateWatch, ServingCertificateMaterial } from './certificate-source.js';
import { DAY_MS, serviceDnsNames, YEAR_MS } from './pki.js';
import {
  CA_BUNDLE_FIELD_MANAGER,
  ServingCertificateManager,
  type ServingCertificateManagerOptions,
} from './serving-certificate-manager.js';
import { subjectAltNames } from './serving-certificate-plan.js';
import { PREVIOUS_CA_CERT_KEY, PREVIOUS_CA_RETIRE_ANNOTATION } from './serving-secret.js';
import { x509 } from './x509.js';

const NAMESPACE = 'chaperone-system';
const SERVICE = 'chaperone-operator';
const SECRET = 'chaperone-operator-tls';
const WEBHOOKS = 'chaperone-test';

describe('ServingCertificateManager against a real API server', () => {
  let cp: ControlPlane;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let admission: k8s.AdmissionregistrationV1Api;
  const watches: CertificateWatch[] = [];

  const manager = (opts: Partial<ServingCertificateManagerOptions> = {}) =>
    new ServingCertificateManager({
      kubeConfig: kc,
      namespace: NAMESPACE,
      serviceName: SERVICE,
      secretName: SECRET,
      mutatingWebhookConfigurations: [WEBHOOKS],
      ipAddresses: ['127.0.0.1'],
      ...opts,
    });
  const readSecret = () => core.readNamespacedSecret({ name: SECRET, namespace: NAMESPACE });
  const text = (secret: k8s.V1Secret, key: string) =>
    Buffer.from(secret.data?.[key] ?? '', 'base64').toString();
  const readWebhooks = () => admission.readMutatingWebhookConfiguration({ name: WEBHOOKS });
  const bundles = async () =>
    ((await readWebhooks()).webhooks ?? []).map((w) =>
      Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString(),
    );
  const serial = (pem: string) => new X509Certificate(pem).serialNumber;
  const notAfter = (pem: string) => new X509Certificate(pem).validToDate.getTime();
  const setData = (key: string, value: string) =>
    core.patchNamespacedSecret({
      name: SECRET,
      namespace: NAMESPACE,
      body: [{ op: 'replace', path: `/data/${key}`, value: Buffer.from(value).toString('base64') }],
    });
  const corrupt = (key: string) => setData(key, 'garbage');

  beforeAll(async () => {
    cp = await startControlPlane({ installCrds: false });
    kc = cp.admin.kubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
    admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    // Never called: it matches no namespace, and the API server only stores clientConfig.
    const webhook = (name: string): k8s.V1MutatingWebhook => ({
      name,
      clientConfig: { url: 'https://127.0.0.1:1/x' },
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Ignore',
      namespaceSelector: { matchLabels: { 'chaperone.dev/never': 'true' } },
      rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'] }],
    });
    await admission.createMutatingWebhookConfiguration({
      body: {
        metadata: { name: WEBHOOKS },
        webhooks: [webhook('a.chaperone.dev'), webhook('b.chaperone.dev')],
      },
    });
  });
  afterAll(async () => {
    for (const w of watches) w.stop();
    await cp?.stop();
  });

  it('first ensure() creates the Secret and patches the caBundle into every webhook', async () => {
    const result = await manager().ensure();
    expect(result).toMatchObject({
      action: 'issue-all',
      patchedWebhookConfigurations: [WEBHOOKS],
      conflicts: 0,
    });
    const secret = await readSecret();
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data ?? {}).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(result.secretResourceVersion).toBe(secret.metadata?.resourceVersion);
    const ca = new X509Certificate(text(secret, 'ca.crt'));
    const leaf = new X509Certificate(text(secret, 'tls.crt'));
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(subjectAltNames(new x509.X509Certificate(text(secret, 'tls.crt')))).toEqual({
      dnsNames: serviceDnsNames(SERVICE, NAMESPACE),
      ipAddresses: ['127.0.0.1'],
    });
    expect(await bundles()).toEqual([text(secret, 'ca.crt'), text(secret, 'ca.crt')]);
    expect(result.caBundle).toBe(text(secret, 'ca.crt'));
  });

  it('second ensure() changes nothing', async () => {
    const secretBefore = (await readSecret()).metadata?.resourceVersion;
    const webhooksBefore = (await readWebhooks()).metadata?.resourceVersion;
    const result = await manager().ensure();
    expect(result).toMatchObject({
      action: 'keep',
      patchedWebhookConfigurations: [],
      secretResourceVersion: secretBefore,
    });
    expect((await readSecret()).metadata?.resourceVersion).toBe(secretBefore);
    expect((await readWebhooks()).metadata?.resourceVersion).toBe(webhooksBefore);
  });

  it('re-patches a caBundle that someone reset (as helm upgrade does)', async () => {
    await admission.patchMutatingWebhookConfiguration({
      name: WEBHOOKS,
      body: [{ op: 'remove', path: '/webhooks/1/clientConfig/caBundle' }],
    });
    expect((await bundles())[1]).toBe('');
    const result = await manager().ensure();
    expect(result).toMatchObject({ action: 'keep', patchedWebhookConfigurations: [WEBHOOKS] });
    const ca = text(await readSecret(), 'ca.crt');
    expect(await bundles()).toEqual([ca, ca]);
  });

  it('re-issues a leaf near expiry with the same CA, leaving the caBundle alone', async () => {
    const before = await readSecret();
    const webhooksBefore = (await readWebhooks()).metadata?.resourceVersion;
    const nearExpiry = new Date(notAfter(text(before, 'tls.crt')) - 10 * DAY_MS);
    const result = await manager({ now: () => nearExpiry }).ensure();
    expect(result.action).toBe('issue-leaf');
    expect(result.reason).toMatch(/tls\.crt expires in 10 days/);
    const after = await readSecret();
    expect(text(after, 'ca.crt')).toBe(text(before, 'ca.crt'));
    expect(text(after, 'ca.key')).toBe(text(before, 'ca.key'));
    expect(serial(text(after, 'tls.crt'))).not.toBe(serial(text(before, 'tls.crt')));
    expect(new X509Certificate(text(after, 'tls.crt')).validFromDate.getTime()).toBeGreaterThan(Date.now());
    expect((await readWebhooks()).metadata?.resourceVersion).toBe(webhooksBefore);
  });

  it('re-issues, at real time, a leaf that is not valid yet (written by a replica whose clock ran ahead)', async () => {
    const result = await manager().ensure();
    expect(result).toMatchObject({ action: 'issue-leaf', reason: expect.stringMatching(/not valid before/) });
    expect(new X509Certificate(text(await readSecret(), 'tls.crt')).validFromDate.getTime()).toBeLessThan(
      Date.now(),
    );
  });

  it('two managers racing to create the Secret end with one CA (create conflict)', async () => {
    await core.deleteNamespacedSecret({ name: SECRET, namespace: NAMESPACE });
    const results = await Promise.all([manager().ensure(), manager().ensure(), manager().ensure()]);
    const secret = await readSecret();
    const ca = text(secret, 'ca.crt');
    expect(results.map((r) => r.caBundle)).toEqual([ca, ca, ca]);
    expect(results.filter((r) => r.action === 'issue-all')).toHaveLength(1);
    expect(results.reduce((n, r) => n + r.conflicts, 0)).toBeGreaterThanOrEqual(1);
    expect(await bundles()).toEqual([ca, ca]);
  });

  it('two managers racing to replace a broken CA end with one CA (update conflict)', async () => {
    await corrupt('ca.crt');
    const results = await Promise.all([manager().ensure(), manager().ensure()]);
    const ca = text(await readSecret(), 'ca.crt');
    expect(new X509Certificate(ca).ca).toBe(true);
    expect(results.map((r) => r.caBundle)).toEqual([ca, ca]);
    expect(results.filter((r) => r.action === 'issue-all')).toHaveLength(1);
    expect(results.reduce((n, r) => n + r.conflicts, 0)).toBeGreaterThanOrEqual(1);
    expect(await bundles()).toEqual([ca, ca]);
  });

  it('a watcher sees a rotation and calls onChange with the new certificate', async () => {
    const seen: ServingCertificateMaterial[] = [];
    watches.push(manager({ pollIntervalMs: 100 }).watch((m) => void seen.push(m)));
    const first = await readSecret();
    await vi.waitFor(() => expect(seen).toHaveLength(1), { timeout: 10_000 });
    expect(seen[0]).toEqual({
      cert: text(first, 'tls.crt'),
      key: text(first, 'tls.key'),
      caPem: text(first, 'ca.crt'),
    });

    const result = await manager({ extraDnsNames: ['chaperone-operator.example'] }).ensure();
    expect(result).toMatchObject({
      action: 'issue-leaf',
      reason: expect.stringMatching(/want .*chaperone-operator\.example/),
    });
    const second = await readSecret();
    await vi.waitFor(() => expect(seen).toHaveLength(2), { timeout: 10_000 });
    expect(serial(seen[1]?.cert ?? '')).toBe(serial(text(second, 'tls.crt')));
    expect(seen[1]?.key).toBe(text(second, 'tls.key'));
  });

  it('a watcher skips a broken certificate and keeps the one it has', async () => {
    const seen: ServingCertificateMaterial[] = [];
    const logs: string[] = [];
    watches.push(
      manager({ pollIntervalMs: 100, log: (_l, message) => logs.push(message) }).watch(
        (m) => void seen.push(m),
      ),
    );
    await vi.waitFor(() => expect(seen).toHaveLength(1), { timeout: 10_000 });
    await corrupt('tls.key');
    await vi.waitFor(
      () => expect(logs).toContain('serving Secret holds no usable certificate; keeping the current one'),
      {
        timeout: 10_000,
      },
    );
    expect(seen).toHaveLength(1);
    expect(await manager().current()).toBeUndefined();
    // The leader repairs it: a new leaf from the same CA, and the watcher delivers it.
    const result = await manager().ensure();
    expect(result.action).toBe('issue-leaf');
    await vi.waitFor(() => expect(seen).toHaveLength(2), { timeout: 10_000 });
    expect(seen[1]?.key).toBe(text(await readSecret(), 'tls.key'));
  });

  it('repairs a corrupted Secret (issue-all) and updates the caBundle', async () => {
    // A valid key, but not the CA's (the leaf's, as a botched manual edit might leave it).
    const broken = await readSecret();
    await setData('ca.key', text(broken, 'tls.key'));
    const oldCa = text(broken, 'ca.crt');
    const result = await manager().ensure();
    expect(result).toMatchObject({ action: 'issue-all', reason: 'ca.key does not belong to ca.crt' });
    const secret = await readSecret();
    const ca = text(secret, 'ca.crt');
    expect(ca).not.toBe(oldCa);
    expect(new X509Certificate(text(secret, 'tls.crt')).verify(new X509Certificate(ca).publicKey)).toBe(true);
    // The old CA's certificate still parses, and replicas may serve its leaf: it stays trusted for now.
    expect(result.caBundle).toBe(`${ca}${oldCa}`);
    expect(await bundles()).toEqual([`${ca}${oldCa}`, `${ca}${oldCa}`]);
    expect((await manager().ensure()).action).toBe('keep');
  });

  it('rotates a CA near expiry, keeps the old CA in the bundle until the old leaf expires, then drops it', async () => {
    // Short-lived CA (2 y, renewed in its last year) and a leaf of 1.5 y: at 1 y + 30 d the CA is
    // due while the old leaf still has months left, the case where the old CA must stay trusted.
    const policy = { caValidityMs: 2 * YEAR_MS, leafValidityMs: 1.5 * YEAR_MS };
    await core.deleteNamespacedSecret({ name: SECRET, namespace: NAMESPACE });
    const start = Date.now();
    expect((await manager({ ...policy, now: () => new Date(start) }).ensure()).action).toBe('issue-all');
    const before = await readSecret();
    const oldCa = text(before, 'ca.crt');
    const oldLeafEnd = notAfter(text(before, 'tls.crt'));

    const rotationTime = new Date(start + YEAR_MS + 30 * DAY_MS);
    const result = await manager({ ...policy, now: () => rotationTime }).ensure();
    expect(result).toMatchObject({
      action: 'issue-all',
      reason: expect.stringMatching(/the CA expires in 33\d days/),
    });
    const after = await readSecret();
    const newCa = text(after, 'ca.crt');
    expect(newCa).not.toBe(oldCa);
    expect(text(after, PREVIOUS_CA_CERT_KEY)).toBe(oldCa);
    expect(after.metadata?.annotations?.[PREVIOUS_CA_RETIRE_ANNOTATION]).toBe(
      new Date(oldLeafEnd).toISOString(),
    );
    expect(result.caBundle).toBe(`${newCa}${oldCa}`);
    expect(await bundles()).toEqual([`${newCa}${oldCa}`, `${newCa}${oldCa}`]);
    // Nothing to do while the old leaf may still be served.
    const stillNeeded = await manager({ ...policy, now: () => new Date(oldLeafEnd - DAY_MS) }).ensure();
    expect(stillNeeded).toMatchObject({ action: 'keep', caBundle: `${newCa}${oldCa}` });
    expect((await readSecret()).metadata?.resourceVersion).toBe(after.metadata?.resourceVersion);

    // Once the old leaf has expired, the old CA leaves the Secret and the bundle.
    const retired = await manager({ ...policy, now: () => new Date(oldLeafEnd + DAY_MS) }).ensure();
    expect(retired).toMatchObject({ action: 'keep', reason: 'retired the previous CA from the bundle' });
    const final = await readSecret();
    expect(final.data?.[PREVIOUS_CA_CERT_KEY]).toBeUndefined();
    expect(final.metadata?.annotations?.[PREVIOUS_CA_RETIRE_ANNOTATION]).toBeUndefined();
    expect(text(final, 'ca.crt')).toBe(newCa);
    expect(await bundles()).toEqual([newCa, newCa]);
  });

  it('recreates a Secret of the wrong type', async () => {
    await core.deleteNamespacedSecret({ name: SECRET, namespace: NAMESPACE });
    await core.createNamespacedSecret({
      namespace: NAMESPACE,
      body: { metadata: { name: SECRET, labels: { keep: 'me' } }, type: 'Opaque', data: { x: 'eA==' } },
    });
    const result = await manager().ensure();
    expect(result.action).toBe('issue-all');
    const secret = await readSecret();
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(secret.metadata?.labels).toEqual({ keep: 'me' });
    expect(await bundles()).toEqual([text(secret, 'ca.crt'), text(secret, 'ca.crt')]);
  });

  it('reports a missing webhook configuration instead of failing', async () => {
    const logs: string[] = [];
    const result = await manager({
      mutatingWebhookConfigurations: ['does-not-exist', WEBHOOKS],
      log: (_l, m) => logs.push(m),
    }).ensure();
    expect(result).toMatchObject({ action: 'keep', missingWebhookConfigurations: ['does-not-exist'] });
    expect(logs).toContain('MutatingWebhookConfiguration not found; its caBundle cannot be set');
  });

  it('hot-reloads the HTTPS server: a new handshake sees the rotated leaf', async () => {
    const m = manager({ pollIntervalMs: 100 });
    const initial = await m.current();
    if (!initial) throw new Error('no certificate in the Secret');
    const server = new OperatorHttpsServer({
      host: '127.0.0.1',
      port: 0,
      certificate: initial,
      registry: new Registry(),
    });
    const port = await server.listen();
    try {
      const handshakeSerial = () =>
        new Promise<string>((resolve, reject) => {
          const socket = connect(
            { host: '127.0.0.1', port, servername: `${SERVICE}.${NAMESPACE}.svc`, ca: initial.caPem },
            () => {
              resolve(socket.getPeerCertificate().serialNumber);
              socket.end();
            },
          );
          socket.on('error', reject);
        });
      expect(await handshakeSerial()).toBe(serial(initial.cert));

      const applied: string[] = [];
      watches.push(
        m.watch((material) => {
          server.setCertificate(material);
          applied.push(serial(material.cert));
        }),
      );
      await vi.waitFor(() => expect(applied).toHaveLength(1), { timeout: 10_000 });

      await corrupt('tls.crt');
      expect((await m.ensure()).action).toBe('issue-leaf');
      const rotated = serial(text(await readSecret(), 'tls.crt'));
      expect(rotated).not.toBe(serial(initial.cert));
      await vi.waitFor(() => expect(applied).toContain(rotated), { timeout: 10_000 });
      expect(await handshakeSerial()).toBe(rotated);
    } finally {
      await server.close();
    }
  });

  it('keeps the caBundle when the webhook configuration is server-side applied again without one', async () => {
    const ca = text(await readSecret(), 'ca.crt');
    expect(await bundles()).toEqual([ca, ca]);
    const config = await readWebhooks();
    const manifest = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: WEBHOOKS },
      webhooks: (config.webhooks ?? []).map((w) => ({
        ...w,
        clientConfig: { url: w.clientConfig.url },
        timeoutSeconds: 7,
      })),
    };
    const applied = await cp.kubectl(
      ['apply', '--server-side', '--force-conflicts', `--field-manager=${FIELD_MANAGER}`, '-f', '-'],
      { input: JSON.stringify(manifest) },
    );
    expect(applied.stderr).toBe('');
    const after = await readWebhooks();
    expect(after.webhooks?.map((w) => w.timeoutSeconds)).toEqual([7, 7]);
    expect(await bundles()).toEqual([ca, ca]);
    expect(after.metadata?.managedFields?.map((f) => f.manager)).toContain(CA_BUNDLE_FIELD_MANAGER);
  });

  it('the API server itself trusts the webhook across a CA rotation (old leaf and new leaf)', async () => {
    const LIVE = 'chaperone-live';
    const ns = 'cert-live';
    await core.createNamespace({
      body: { metadata: { name: ns, labels: { 'chaperone.dev/cert-test': 'true' } } },
    });
    const m = manager({ mutatingWebhookConfigurations: [LIVE], pollIntervalMs: 100 });
    const oldMaterial = await m.current();
    if (!oldMaterial) throw new Error('no certificate in the Secret');
    const server = new OperatorHttpsServer({
      host: '127.0.0.1',
      port: 0,
      certificate: oldMaterial,
      registry: new Registry(),
    });
    let calls = 0;
    server.admission('/mutate', 'cert-test', async () => {
      calls++;
      return { allowed: true };
    });
    const port = await server.listen();
    // Every check below must make the API server handshake again, not reuse a kept-alive connection.
    const dropConnections = () =>
      (server.app.server as unknown as { closeAllConnections(): void }).closeAllConnections();
    const createConfigMap = () =>
      core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { generateName: 'probe-' } } });
    const admitted = async () => {
      dropConnections();
      const before = calls;
      await vi.waitFor(
        async () => {
          await createConfigMap();
          expect(calls).toBeGreaterThan(before);
        },
        { timeout: 15_000, interval: 200 },
      );
    };
    try {
      await admission.createMutatingWebhookConfiguration({
        body: {
          metadata: { name: LIVE },
          webhooks: [
            {
              name: 'live.chaperone.dev',
              clientConfig: { url: `https://127.0.0.1:${port}/mutate` },
              admissionReviewVersions: ['v1'],
              sideEffects: 'None',
              failurePolicy: 'Fail',
              timeoutSeconds: 5,
              namespaceSelector: { matchLabels: { 'chaperone.dev/cert-test': 'true' } },
              rules: [
                { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] },
              ],
            },
          ],
        },
      });
      expect((await m.ensure()).patchedWebhookConfigurations).toEqual([LIVE]);
      await admitted();

      // Rotate the CA now: the current one (10 y) is inside an 11 y renew window.
      const rotation = await manager({
        mutatingWebhookConfigurations: [LIVE],
        caValidityMs: 12 * YEAR_MS,
        caRenewBeforeMs: 11 * YEAR_MS,
      }).ensure();
      expect(rotation.action).toBe('issue-all');
      const newMaterial = await m.current();
      if (!newMaterial) throw new Error('no certificate after the rotation');
      expect(rotation.caBundle).toBe(newMaterial.caPem);

      // The replica reloads through watch(): the new leaf is trusted, so the new bundle is in effect.
      const applied: string[] = [];
      const w = m.watch((material) => {
        server.setCertificate(material);
        applied.push(serial(material.cert));
      });
      watches.push(w);
      await vi.waitFor(() => expect(applied).toContain(serial(newMaterial.cert)), { timeout: 10_000 });
      await admitted();
      // A replica that has not reloaded yet still serves the old leaf: trusted through the old CA.
      w.stop();
      server.setCertificate(oldMaterial);
      await admitted();

      // Control: without the old CA in the bundle, the old leaf is refused, so the checks above mean something.
      const newCaOnly = Buffer.from(text(await readSecret(), 'ca.crt')).toString('base64');
      await admission.patchMutatingWebhookConfiguration({
        name: LIVE,
        body: [{ op: 'replace', path: '/webhooks/0/clientConfig/caBundle', value: newCaOnly }],
      });
      await vi.waitFor(
        async () => {
          dropConnections();
          await expect(createConfigMap()).rejects.toThrow(/unknown authority/);
        },
        { timeout: 15_000, interval: 200 },
      );
    } finally {
      await admission.deleteMutatingWebhookConfiguration({ name: LIVE }).catch(() => undefined);
      await server.close();
    }
  });

  it('the rotation loop runs ensure() at once and again after the interval', async () => {
    const results: string[] = [];
    const loop = manager({ rotationIntervalMs: 200 }).startRotationLoop({
      onResult: (r) => results.push(r.action),
    });
    try {
      await vi.waitFor(() => expect(results.length).toBeGreaterThanOrEqual(1), { timeout: 10_000 });
      await corrupt('tls.key');
      await vi.waitFor(() => expect(results).toContain('issue-leaf'), { timeout: 10_000 });
      expect(await manager().current()).toBeDefined();
    } finally {
      loop.stop();
    }
  });
});
