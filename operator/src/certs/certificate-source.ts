import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { Gauge, type Registry } from 'prom-client';

/** What the HTTPS server needs to serve, plus the CA bundle that clients should trust. */
export interface ServingCertificateMaterial {
  /** PEM leaf certificate (optionally followed by intermediates). */
  cert: string;
  /** PEM private key of the leaf. */
  key: string;
  /** PEM CA bundle clients trust (current CA, then the previous one during a CA rotation); undefined if the source has none. */
  caPem: string | undefined;
}

/** Called with the first valid certificate and then after every change. A throw means "not applied": it is offered again. */
export type CertificateChangeHandler = (material: ServingCertificateMaterial) => void | Promise<void>;

export interface CertificateWatch {
  /** Stops polling and file watching. Idempotent. */
  stop(): void;
}

/** Where the serving certificate comes from: the self-managed Secret or files mounted by cert-manager. */
export interface CertificateSource {
  /** The current certificate, or undefined if there is none yet or it is not a usable pair. */
  current(): Promise<ServingCertificateMaterial | undefined>;
  watch(onChange: CertificateChangeHandler): CertificateWatch;
}

/**
 * Starts `source.watch` and resolves `first` with the first usable certificate (what the HTTPS
 * server is constructed with); every later change goes to `apply` (usually
 * `server.setCertificate`). A replica that is not the leader waits here until the leader has
 * written the Secret.
 */
export function startCertificateWatch(
  source: CertificateSource,
  apply: CertificateChangeHandler,
): { first: Promise<ServingCertificateMaterial>; watch: CertificateWatch } {
  let resolveFirst!: (m: ServingCertificateMaterial) => void;
  const first = new Promise<ServingCertificateMaterial>((resolve) => {
    resolveFirst = resolve;
  });
  let seenFirst = false;
  const watch = source.watch(async (material) => {
    if (!seenFirst) {
      seenFirst = true;
      resolveFirst(material);
      return;
    }
    await apply(material);
  });
  return { first, watch };
}

/**
 * Why `cert`/`key` cannot be served, or undefined when they can: both parse, the key is the
 * certificate's, and Node's TLS accepts them. Checked before handing a pair to the server because
 * a half-written Secret or a symlink swap caught mid-way must never replace a working certificate.
 */
export function servingPairProblem(cert: string, key: string): string | undefined {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    return 'the certificate is not a PEM X.509 certificate';
  }
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(key)))
      return 'the private key does not belong to the certificate';
  } catch {
    return 'the private key is not a PEM private key';
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    return `TLS rejects the pair: ${(err as Error).message}`;
  }
  return undefined;
}

/** Serial number (hex) of the first certificate in `pem`, for logs. */
export function certificateSerial(pem: string): string | undefined {
  try {
    return new X509Certificate(pem).serialNumber;
  } catch {
    return undefined;
  }
}

/** One per process (a second registration in the same registry throws). */
export function certificateExpiryGauge(registry: Registry): Gauge<'certificate'> {
  return new Gauge({
    name: 'chaperone_operator_certificate_expiry_timestamp_seconds',
    help: 'When the certificate this replica serves (serving) and its CA (ca) expire, in Unix seconds.',
    labelNames: ['certificate'],
    registers: [registry],
  });
}

/** Sets the expiry gauge from a material's leaf and its first CA. */
export function recordCertificateExpiry(
  gauge: Gauge<'certificate'>,
  material: ServingCertificateMaterial,
): void {
  const expiry = (pem: string | undefined) => {
    if (!pem) return undefined;
    try {
      return new X509Certificate(pem).validToDate.getTime() / 1000;
    } catch {
      return undefined;
    }
  };
  const leaf = expiry(material.cert);
  const ca = expiry(material.caPem);
  if (leaf !== undefined) gauge.set({ certificate: 'serving' }, leaf);
  if (ca !== undefined) gauge.set({ certificate: 'ca' }, ca);
}
