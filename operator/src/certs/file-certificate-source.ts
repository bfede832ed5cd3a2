import { type FSWatcher, watch as watchFs } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@chaperone/api';
import type { Gauge, Registry } from 'prom-client';
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

export interface FileCertificateSourceOptions {
  /** Periodic re-read, the safety net for missed fs events. Default 30 s. */
  pollIntervalMs?: number;
  /** Wait this long after an fs event before reading, so a burst of events is one read. Default 200 ms. */
  debounceMs?: number;
  registry?: Registry;
  log?: Logger;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * cert-manager mode: the serving certificate is a Secret that cert-manager keeps renewed and the
 * chart mounts at `dir` (tls.crt, tls.key, ca.crt; cert-manager's cainjector keeps the caBundle).
 *
 * Kubernetes updates a mounted Secret by writing a new hidden directory and swapping the `..data`
 * symlink, so the files' own inodes never change: we watch the directory (the swap is a rename
 * there) and also re-read periodically, because inotify events on some volume types are lost.
 * tls.crt and tls.key are read separately, so a read can straddle a swap; a pair whose key does not
 * match is skipped and the next event or poll picks up the consistent pair.
 */
export class FileCertificateSource implements CertificateSource {
  private readonly expiry?: Gauge<'certificate'>;

  constructor(
    readonly dir: string,
    private readonly opts: FileCertificateSourceOptions = {},
  ) {
    if (opts.registry) this.expiry = certificateExpiryGauge(opts.registry);
  }

  private async read(): Promise<ServingCertificateMaterial | string> {
    const [cert, key, caPem] = await Promise.all([
      readOptional(join(this.dir, 'tls.crt')),
      readOptional(join(this.dir, 'tls.key')),
      readOptional(join(this.dir, 'ca.crt')),
    ]);
    if (cert === undefined || key === undefined) {
      return `${this.dir} has no tls.crt/tls.key yet (is the cert-manager Certificate Ready and the Secret mounted?)`;
    }
    const problem = servingPairProblem(cert, key);
    if (problem) return `${this.dir}: ${problem}`;
    return { cert, key, caPem: caPem?.trim() ? caPem : undefined };
  }

  async current(): Promise<ServingCertificateMaterial | undefined> {
    const result = await this.read().catch((err: Error) => err.message);
    return typeof result === 'string' ? undefined : result;
  }

  watch(onChange: CertificateChangeHandler): CertificateWatch {
    const interval = this.opts.pollIntervalMs ?? 30_000;
    const debounce = this.opts.debounceMs ?? 200;
    let stopped = false;
    let delivered: string | undefined;
    let warned: string | undefined;
    let running: Promise<void> | undefined;
    let again = false;
    let debounceTimer: NodeJS.Timeout | undefined;

    const check = async (): Promise<void> => {
      const result = await this.read().catch((err: Error) => `reading ${this.dir} failed: ${err.message}`);
      if (stopped) return;
      if (typeof result === 'string') {
        if (warned !== result) {
          this.opts.log?.(
            'warn',
            'no usable serving certificate in the mounted directory; keeping the current one',
            {
              problem: result,
            },
          );
          warned = result;
        }
        return;
      }
      warned = undefined;
      const fingerprint = `${result.cert}\n${result.key}\n${result.caPem ?? ''}`;
      if (fingerprint === delivered) return;
      try {
        await onChange(result);
        delivered = fingerprint;
        if (this.expiry) recordCertificateExpiry(this.expiry, result);
        this.opts.log?.('info', 'serving certificate loaded', { serial: certificateSerial(result.cert) });
      } catch (err) {
        this.opts.log?.('warn', 'applying the serving certificate failed; will retry', {
          error: (err as Error).message,
        });
      }
    };
    // One check at a time; a trigger during a check runs one more afterwards, so no change is missed.
    const trigger = () => {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      running = check().finally(() => {
        running = undefined;
        if (again) {
          again = false;
          trigger();
        }
      });
    };

    let fsWatcher: FSWatcher | undefined;
    try {
      fsWatcher = watchFs(this.dir, { persistent: false }, () => {
        if (debounceTimer) clearTimeout(debounceTimer);
        debounceTimer = setTimeout(trigger, debounce);
        debounceTimer.unref();
      });
      fsWatcher.on('error', (err) => {
        this.opts.log?.('warn', 'watching the certificate directory failed; relying on periodic re-reads', {
          dir: this.dir,
          error: err.message,
        });
        fsWatcher?.close();
      });
    } catch (err) {
      this.opts.log?.('warn', 'cannot watch the certificate directory; relying on periodic re-reads', {
        dir: this.dir,
        error: (err as Error).message,
      });
    }
    const poll = setInterval(trigger, interval);
    poll.unref();
    trigger();

    return {
      stop() {
        stopped = true;
        clearInterval(poll);
        if (debounceTimer) clearTimeout(debounceTimer);
        fsWatcher?.close();
      },
    };
  }
}
