import { createSecureContext, type SecureContextOptions } from 'node:tls';
import type { Logger } from '@chaperone/api';
import Fastify, { type FastifyInstance } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { type AdmissionHandler, type AdmissionReview, toAdmissionResponse } from './admission-review.js';

export interface ServingCertificate {
  cert: string;
  key: string;
}

export interface HttpsServerOptions {
  host: string;
  port: number;
  certificate: ServingCertificate;
  registry: Registry;
  /** Admission reviews are at most a few MiB (the API server caps objects at 3 MiB). */
  bodyLimitBytes?: number;
  log?: Logger;
}

/**
 * The operator's one HTTPS listener: admission webhooks and the credential broker. The serving
 * certificate is swapped in place (`setCertificate`) when it rotates, without dropping connections.
 */
export class OperatorHttpsServer {
  readonly app: FastifyInstance;
  private readonly admissionCounter: Counter<'webhook' | 'result'>;

  constructor(private readonly opts: HttpsServerOptions) {
    this.app = Fastify({
      https: { cert: opts.certificate.cert, key: opts.certificate.key },
      bodyLimit: opts.bodyLimitBytes ?? 6 * 1024 * 1024,
      logger: false,
      // Long polls of the broker hold requests open for up to 30 s.
      requestTimeout: 60_000,
      // Refuse unknown fields (400) instead of fastify's default of silently dropping them: a
      // sidecar that sends a field the broker does not know gets told so.
      ajv: { customOptions: { removeAdditional: false } },
    });
    this.admissionCounter = new Counter({
      name: 'chaperone_operator_admission_reviews_total',
      help: 'Admission reviews answered, by webhook and result (allowed, patched, refused, error).',
      labelNames: ['webhook', 'result'],
      registers: [opts.registry],
    });
  }

  /** Serve an AdmissionReview endpoint. A handler that throws refuses the request (fail closed). */
  admission(path: string, webhook: string, handler: AdmissionHandler): void {
    this.app.post(path, async (req, reply) => {
      const review = req.body as AdmissionReview | undefined;
      const request = review?.request;
      if (!request || typeof request.uid !== 'string') {
        this.admissionCounter.inc({ webhook, result: 'error' });
        return reply
          .code(400)
          .send({ error: 'expected an admission.k8s.io/v1 AdmissionReview with a request' });
      }
      let verdict: Awaited<ReturnType<AdmissionHandler>>;
      try {
        verdict = await handler(request);
      } catch (err) {
        this.opts.log?.('error', 'admission webhook failed', { webhook, error: String(err) });
        verdict = {
          allowed: false,
          code: 500,
          message: `chaperone ${webhook} webhook failed: ${(err as Error).message}; see the operator's log`,
        };
      }
      const result = !verdict.allowed
        ? verdict.code === 500
          ? 'error'
          : 'refused'
        : verdict.patch?.length
          ? 'patched'
          : 'allowed';
      this.admissionCounter.inc({ webhook, result });
      return {
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        response: toAdmissionResponse(request.uid, verdict),
      };
    });
  }

  /** Replace the serving certificate for new TLS handshakes (certificate rotation). */
  setCertificate(certificate: ServingCertificate): void {
    const options: SecureContextOptions = { cert: certificate.cert, key: certificate.key };
    // Validate before swapping: a bad pair must not take the listener down.
    createSecureContext(options);
    (this.app.server as unknown as { setSecureContext(o: SecureContextOptions): void }).setSecureContext(
      options,
    );
  }

  async listen(): Promise<number> {
    await this.app.listen({ host: this.opts.host, port: this.opts.port });
    const address = this.app.server.address();
    return typeof address === 'object' && address ? address.port : this.opts.port;
  }

  async close(): Promise<void> {
    await this.app.close();
  }
}
