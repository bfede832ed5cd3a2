import type { Logger } from '@chaperone/api';
import * as k8s from '@kubernetes/client-node';
import type { Gauge, Registry } from 'prom-client';
import { FIELD_MANAGER, MUTATING_WEBHOOK_CONFIGURATION, SERVING_TLS_SECRET } from '../operator-constants.js';
import {
  type CertificateChangeHandler,
  type CertificateSource,
  type CertificateWatch,
  certificateExpiryGauge,
  certificateSerial,
  recordCertificateExpiry,
  type ServingCertificateMaterial,
  servingPairProblem,
} from './certificate-source.js';
import { generateCa, issueServingCert, serviceDnsNames } from './pki.js';
import {
  buildCaBundle,
  type CertificateAction,
  type CertificatePolicy,
  DEFAULT_CERTIFICATE_POLICY,
  isPreviousCaActive,
  mergeCaBundles,
  planServingCertificates,
  previousCaForRotation,
  validateCertificatePolicy,
} from './serving-certificate-plan.js';
import {
  decodeServingSecret,
  encodeServingSecret,
  materialFromSecret,
  type ServingSecretState,
  TLS_SECRET_TYPE,
} from './serving-secret.js';

export interface ServingCertificateManagerOptions {
  kubeConfig: k8s.KubeConfig;
  /** The operator's namespace: where the Secret lives and part of the Service DNS names. */
  namespace: string;
  /** The Service in front of the webhooks and the broker. */
  serviceName: string;
  /** Default SERVING_TLS_SECRET. */
  secretName?: string;
  /** MutatingWebhookConfigurations whose every webhook gets the caBundle. Default [MUTATING_WEBHOOK_CONFIGURATION]. */
  mutatingWebhookConfigurations?: readonly string[];
  /** Default cluster.local. */
  clusterDomain?: string;
  /** More SANs besides the Service names (tests: 127.0.0.1). */
  extraDnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  caValidityMs?: number;
  leafValidityMs?: number;
  leafRenewFraction?: number;
  caRenewBeforeMs?: number;
  /** Clock for planning and issuing (tests move it forward). Default: the real clock. */
  now?: () => Date;
  /** How often watch() re-reads the Secret. Default 30 s. */
  pollIntervalMs?: number;
  /** How often the leader's rotation loop runs ensure(). Default 5 min. */
  rotationIntervalMs?: number;
  /** Retry delay after a failed ensure() in the rotation loop. Default 30 s. */
  retryIntervalMs?: number;
  /** Gets chaperone_operator_certificate_expiry_timestamp_seconds if given. */
  registry?: Registry;
  log?: Logger;
}

export interface EnsureResult {
  action: CertificateAction;
  reason: string;
  /** resourceVersion of the Secret after ensure() (unchanged when nothing was written). */
  secretResourceVersion: string;
  /** The caBundle now in the webhook configurations (PEM). */
  caBundle: string;
  /** Webhook configurations whose caBundle was changed. */
  patchedWebhookConfigurations: string[];
  /** Webhook configurations that do not exist (nothing to patch; see the warning in the log). */
  missingWebhookConfigurations: string[];
  /** Optimistic-concurrency conflicts that made ensure() re-read and re-plan. */
  conflicts: number;
}

const MAX_CONFLICTS = 8;

/**
 * Field manager of the caBundle patches, apart from FIELD_MANAGER so that managedFields tell who
 * writes the caBundle, and so that whatever applies the rest of the webhook configuration (the
 * operator or the chart, without a caBundle) never owns, and so never drops, this field.
 */
export const CA_BUNDLE_FIELD_MANAGER = `${FIELD_MANAGER}-cabundle`;

function statusCode(err: unknown): number | undefined {
  if (err instanceof k8s.ApiException) return err.code;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

class ConflictError extends Error {}

function decodeBase64(value: string | undefined): string {
  return value ? Buffer.from(value, 'base64').toString('utf8') : '';
}

/**
 * The self-managed serving certificate: a CA and a leaf in one Secret, kept valid by the leader
 * (`ensure`, `startRotationLoop`) and loaded by every replica (`watch`).
 *
 * Concurrency: every write carries the resourceVersion it was planned from (create fails with
 * AlreadyExists), and a conflict re-reads and re-plans, so two replicas racing converge on the
 * Secret that won; the loser's CA is discarded before anyone serves a leaf of it.
 *
 * CA rotation is trust-before-use: the caBundle gets the new CA (next to the old one) before the
 * Secret with the new leaf is written, and the old CA stays in the bundle until the old leaf
 * expires, so the API server trusts whichever leaf a replica serves at any moment.
 */
export class ServingCertificateManager implements CertificateSource {
  readonly secretName: string;
  readonly webhookConfigurations: readonly string[];
  readonly policy: CertificatePolicy;
  private readonly core: k8s.CoreV1Api;
  private readonly admission: k8s.AdmissionregistrationV1Api;
  private readonly now: () => Date;
  private readonly expiry?: Gauge<'certificate'>;

  constructor(private readonly opts: ServingCertificateManagerOptions) {
    this.secretName = opts.secretName ?? SERVING_TLS_SECRET;
    this.webhookConfigurations = opts.mutatingWebhookConfigurations ?? [MUTATING_WEBHOOK_CONFIGURATION];
    this.policy = {
      dnsNames: [
        ...serviceDnsNames(opts.serviceName, opts.namespace, opts.clusterDomain),
        ...(opts.extraDnsNames ?? []),
      ],
      ipAddresses: opts.ipAddresses ?? [],
      caValidityMs: opts.caValidityMs ?? DEFAULT_CERTIFICATE_POLICY.caValidityMs,
      leafValidityMs: opts.leafValidityMs ?? DEFAULT_CERTIFICATE_POLICY.leafValidityMs,
      leafRenewFraction: opts.leafRenewFraction ?? DEFAULT_CERTIFICATE_POLICY.leafRenewFraction,
      caRenewBeforeMs: opts.caRenewBeforeMs ?? DEFAULT_CERTIFICATE_POLICY.caRenewBeforeMs,
    };
    validateCertificatePolicy(this.policy);
    this.core = opts.kubeConfig.makeApiClient(k8s.CoreV1Api);
    this.admission = opts.kubeConfig.makeApiClient(k8s.AdmissionregistrationV1Api);
    this.now = opts.now ?? (() => new Date());
    if (opts.registry) {
      this.expiry = certificateExpiryGauge(opts.registry);
    }
  }

  /**
   * Leader only. Makes the Secret hold a valid CA and leaf for the Service names and puts the CA
   * bundle into every webhook of the configured MutatingWebhookConfigurations. Writes nothing when
   * all is current. Safe to run concurrently from several replicas (see the class comment).
   */
  async ensure(): Promise<EnsureResult> {
    let conflicts = 0;
    const patchedEarly = new Set<string>();
    for (;;) {
      const now = this.now();
      const secret = await this.readSecret();
      const current = secret ? decodeServingSecret(secret) : undefined;
      const plan = planServingCertificates(current?.stored, { ...this.policy, now });
      const next = await this.nextState(plan.action, current, secret, now);
      let resourceVersion = secret?.metadata?.resourceVersion ?? '';
      if (next) {
        if (plan.action === 'issue-all') {
          // Trust before use: no replica can load the new leaf before the API server trusts its CA.
          try {
            const early = await this.patchCaBundles(buildCaBundle(next.stored.caCert, next.previous), 'add');
            for (const name of early.patched) patchedEarly.add(name);
          } catch (err) {
            // Replacing a CA the API server trusts now: stop rather than serve a leaf it would refuse
            // (the old CA has months left; the error repeats in the log until RBAC is fixed). With
            // nothing trusted yet there is nothing to break, and the Secret lets replicas start.
            if (next.previous) throw err;
            this.opts.log?.('warn', 'could not add the new CA to the webhooks before use; continuing', {
              error: (err as Error).message,
            });
          }
        }
        try {
          resourceVersion = await this.writeSecret(next, secret);
        } catch (err) {
          if (err instanceof ConflictError && conflicts < MAX_CONFLICTS) {
            conflicts++;
            this.opts.log?.('info', 'serving Secret changed while we planned; re-reading', {
              secret: this.secretName,
            });
            continue;
          }
          if (err instanceof ConflictError) {
            throw new Error(
              `gave up on Secret ${this.opts.namespace}/${this.secretName} after ${conflicts} write conflicts; ` +
                'something else keeps changing it (is a second operator installation managing the same Secret?)',
            );
          }
          throw err;
        }
        if (plan.action !== 'keep') {
          this.opts.log?.('info', 'serving certificate issued', {
            action: plan.action,
            reason: plan.reason,
            serial: certificateSerial(next.stored.tlsCert),
          });
        }
      }
      const state = next ?? current;
      if (!state) throw new Error('unreachable: no Secret state after ensure()');
      const caBundle = buildCaBundle(
        state.stored.caCert,
        isPreviousCaActive(state.previous, now) ? state.previous : undefined,
      );
      const { patched, missing } = await this.patchCaBundles(caBundle, 'exact');
      return {
        action: next ? plan.action : 'keep',
        reason:
          next && plan.action === 'keep'
            ? secret?.type !== TLS_SECRET_TYPE
              ? `recreated the Secret as ${TLS_SECRET_TYPE}`
              : 'retired the previous CA from the bundle'
            : plan.reason,
        secretResourceVersion: resourceVersion,
        caBundle,
        patchedWebhookConfigurations: [...new Set([...patchedEarly, ...patched])],
        missingWebhookConfigurations: missing,
        conflicts,
      };
    }
  }

  /** The Secret to write, or undefined when the stored one is current. */
  private async nextState(
    action: CertificateAction,
    current: ServingSecretState | undefined,
    secret: k8s.V1Secret | undefined,
    now: Date,
  ): Promise<ServingSecretState | undefined> {
    const names = { dnsNames: this.policy.dnsNames, ipAddresses: this.policy.ipAddresses };
    const keptPrevious = isPreviousCaActive(current?.previous, now) ? current?.previous : undefined;
    if (action === 'issue-all') {
      const ca = await generateCa(now, this.policy.caValidityMs);
      const leaf = await issueServingCert(ca, names, now, this.policy.leafValidityMs);
      return {
        stored: { caCert: ca.certPem, caKey: ca.keyPem, tlsCert: leaf.certPem, tlsKey: leaf.keyPem },
        previous: previousCaForRotation(current?.stored, now),
      };
    }
    if (!current) throw new Error('unreachable: the planner keeps or reissues only an existing CA');
    if (action === 'issue-leaf') {
      const leaf = await issueServingCert(
        { certPem: current.stored.caCert, keyPem: current.stored.caKey },
        names,
        now,
        this.policy.leafValidityMs,
      );
      return {
        stored: { ...current.stored, tlsCert: leaf.certPem, tlsKey: leaf.keyPem },
        previous: keptPrevious,
      };
    }
    // keep: rewrite only to drop a retired previous CA or to fix the Secret's type.
    if ((current.previous && !keptPrevious) || secret?.type !== TLS_SECRET_TYPE) {
      return { stored: current.stored, previous: keptPrevious };
    }
    return undefined;
  }

  private async readSecret(): Promise<k8s.V1Secret | undefined> {
    try {
      return await this.core.readNamespacedSecret({ name: this.secretName, namespace: this.opts.namespace });
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw new Error(
        `reading Secret ${this.opts.namespace}/${this.secretName} failed (${statusCode(err) ?? (err as Error).message}); ` +
          'the operator needs get/create/update/delete on it',
      );
    }
  }

  /** Writes `state` guarded by `base`'s resourceVersion; returns the new resourceVersion. */
  private async writeSecret(state: ServingSecretState, base: k8s.V1Secret | undefined): Promise<string> {
    const { namespace } = this.opts;
    const guard = async <T>(what: string, call: () => Promise<T>): Promise<T> => {
      try {
        return await call();
      } catch (err) {
        const code = statusCode(err);
        if (code === 409 || (code === 404 && what !== 'create')) throw new ConflictError(what);
        throw new Error(
          `${what} Secret ${namespace}/${this.secretName} failed (${code ?? (err as Error).message}); ` +
            'the operator needs get/create/update/delete on it',
        );
      }
    };
    if (base && base.type !== TLS_SECRET_TYPE) {
      const wrongType = base;
      // type is immutable: replace the Secret, but only the exact version we planned from.
      this.opts.log?.('warn', 'serving Secret has the wrong type; recreating it', {
        secret: this.secretName,
        type: wrongType.type,
      });
      await guard('delete', () =>
        this.core.deleteNamespacedSecret({
          name: this.secretName,
          namespace,
          body: { preconditions: { resourceVersion: wrongType.metadata?.resourceVersion } },
        }),
      );
      base = {
        metadata: { labels: wrongType.metadata?.labels, annotations: wrongType.metadata?.annotations },
      };
    }
    const body = encodeServingSecret(this.secretName, namespace, state, base);
    const written = body.metadata?.resourceVersion
      ? await guard('update', () =>
          this.core.replaceNamespacedSecret({
            name: this.secretName,
            namespace,
            body,
            fieldManager: FIELD_MANAGER,
          }),
        )
      : await guard('create', () =>
          this.core.createNamespacedSecret({ namespace, body, fieldManager: FIELD_MANAGER }),
        );
    return written.metadata?.resourceVersion ?? '';
  }

  /**
   * Sets caBundle on every webhook that differs, with a JSON patch guarded by the configuration's
   * resourceVersion (a `test` op), so that nothing else in the object (rules, selectors, fields
   * this client version does not know) is rewritten. `add` keeps what each webhook trusts now
   * after `caBundle` (trust-before-use); `exact` sets `caBundle` as is.
   */
  private async patchCaBundles(
    caBundle: string,
    mode: 'add' | 'exact',
  ): Promise<{ patched: string[]; missing: string[] }> {
    const patched: string[] = [];
    const missing: string[] = [];
    for (const name of this.webhookConfigurations) {
      for (let attempt = 0; ; attempt++) {
        let config: k8s.V1MutatingWebhookConfiguration;
        try {
          config = await this.admission.readMutatingWebhookConfiguration({ name });
        } catch (err) {
          if (statusCode(err) === 404) {
            missing.push(name);
            this.opts.log?.('warn', 'MutatingWebhookConfiguration not found; its caBundle cannot be set', {
              name,
              hint: 'install it (the Helm chart does); the next rotation run patches it',
            });
            break;
          }
          throw new Error(
            `reading MutatingWebhookConfiguration ${name} failed (${statusCode(err) ?? (err as Error).message}); ` +
              'the operator needs get/patch on it',
          );
        }
        const ops: object[] = [];
        (config.webhooks ?? []).forEach((webhook, i) => {
          const current = decodeBase64(webhook.clientConfig?.caBundle);
          const wanted = mode === 'add' ? mergeCaBundles(caBundle, current) : caBundle;
          if (current !== wanted) {
            const value = Buffer.from(wanted, 'utf8').toString('base64');
            ops.push({ op: 'add', path: `/webhooks/${i}/clientConfig/caBundle`, value });
          }
        });
        if (ops.length === 0) break;
        try {
          await this.admission.patchMutatingWebhookConfiguration({
            name,
            body: [
              { op: 'test', path: '/metadata/resourceVersion', value: config.metadata?.resourceVersion },
              ...ops,
            ],
            fieldManager: CA_BUNDLE_FIELD_MANAGER,
          });
          patched.push(name);
          break;
        } catch (err) {
          const code = statusCode(err);
          // A failed `test` (someone changed the object since we read it) comes back as 409 or 422.
          if ((code === 409 || code === 422) && attempt < MAX_CONFLICTS) continue;
          throw new Error(
            `patching the caBundle of MutatingWebhookConfiguration ${name} failed (${code ?? (err as Error).message}); ` +
              'the operator needs get/patch on it',
          );
        }
      }
    }
    return { patched, missing };
  }

  /** The certificate in the Secret if it is a usable pair; undefined before the leader created it. */
  async current(): Promise<ServingCertificateMaterial | undefined> {
    const secret = await this.readSecret();
    if (!secret) return undefined;
    const material = materialFromSecret(secret);
    return servingPairProblem(material.cert, material.key) ? undefined : material;
  }

  /**
   * Every replica. Polls the Secret (a GET every `pollIntervalMs`, default 30 s; cheaper and
   * simpler than an informer for one object, and fast enough: leaves are renewed months ahead and
   * a new CA is trusted before its leaf is written) and calls `onChange` with the first usable
   * certificate and again whenever tls.crt, tls.key or the CA bundle changes. An unusable pair
   * (half-written, corrupted) is skipped with a warning: the server keeps the certificate it has.
   */
  watch(onChange: CertificateChangeHandler): CertificateWatch {
    const interval = this.opts.pollIntervalMs ?? 30_000;
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let seenVersion: string | undefined;
    let delivered: string | undefined;
    let warned: string | undefined;
    const tick = async () => {
      try {
        const secret = await this.readSecret();
        const version = secret?.metadata?.resourceVersion;
        if (secret && version !== seenVersion) {
          const material = materialFromSecret(secret);
          const problem = servingPairProblem(material.cert, material.key);
          if (problem) {
            if (warned !== version) {
              this.opts.log?.('warn', 'serving Secret holds no usable certificate; keeping the current one', {
                secret: this.secretName,
                problem,
              });
              warned = version;
            }
          } else {
            const fingerprint = `${material.cert}\n${material.key}\n${material.caPem ?? ''}`;
            if (fingerprint !== delivered && !stopped) {
              await onChange(material);
              delivered = fingerprint;
              this.recordExpiry(material);
              this.opts.log?.('info', 'serving certificate loaded', {
                serial: certificateSerial(material.cert),
              });
            }
          }
          seenVersion = version;
        }
      } catch (err) {
        this.opts.log?.('warn', 'could not refresh the serving certificate; retrying', {
          secret: this.secretName,
          error: (err as Error).message,
        });
      } finally {
        if (!stopped) {
          // Until a first certificate is delivered the HTTPS server cannot start: poll every second.
          timer = setTimeout(tick, delivered ? interval : Math.min(interval, 1_000));
          timer.unref();
        }
      }
    };
    void tick();
    return {
      stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
  }

  /**
   * Leader only: runs ensure() now and then every `rotationIntervalMs` (default 5 min: two GETs
   * when nothing changed, and it also repairs a caBundle that an `helm upgrade` reset). A failed
   * run is retried after `retryIntervalMs`. Stop it when leadership is lost.
   */
  startRotationLoop(hooks: { onResult?: (r: EnsureResult) => void; onError?: (err: Error) => void } = {}): {
    stop(): void;
  } {
    const interval = this.opts.rotationIntervalMs ?? 5 * 60_000;
    const retry = Math.min(this.opts.retryIntervalMs ?? 30_000, interval);
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const run = async () => {
      let next = interval;
      try {
        const result = await this.ensure();
        if (result.action !== 'keep' || result.patchedWebhookConfigurations.length > 0) {
          this.opts.log?.('info', 'serving certificates reconciled', {
            action: result.action,
            reason: result.reason,
            patched: result.patchedWebhookConfigurations,
          });
        }
        hooks.onResult?.(result);
      } catch (err) {
        next = retry;
        this.opts.log?.('error', 'serving certificate rotation failed; retrying', {
          error: (err as Error).message,
          retryInMs: retry,
        });
        hooks.onError?.(err as Error);
      }
      if (!stopped) {
        timer = setTimeout(run, next);
        timer.unref();
      }
    };
    void run();
    return {
      stop() {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
  }

  private recordExpiry(material: ServingCertificateMaterial): void {
    if (this.expiry) recordCertificateExpiry(this.expiry, material);
  }
}
