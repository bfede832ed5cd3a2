// The real I/O behind the Connection reconcile: Secret and ServiceAccount reads from the API
// server, a PostgreSQL login with short timeouts, a TCP/SSH banner probe and an HTTPS probe of a
// Kubernetes API server. Passwords go to the server and nowhere else: no error text built here
// contains one, and node-postgres never puts it in its errors.

import { request as httpsRequest } from 'node:https';
import { connect as netConnect } from 'node:net';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import pg from 'pg';
import { apiErrorCode, describeApiError } from '../controller/api-errors.js';
import { pgSslOptions } from '../credentials/postgres-admin.js';
import type {
  ConnectionReconcileDeps,
  GrantRoleInfo,
  PostgresProbeInput,
  PostgresProbeResult,
  ProbeResult,
  StoredSecret,
} from './connection-reconciler.js';

export interface ProbeTimeouts {
  /** TCP connect, TLS handshake and login. Default 5 s. */
  connectMs?: number;
  /** Each query after login. Default 5 s. */
  queryMs?: number;
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function errorText(err: unknown): string {
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

const TLS_ERROR = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_|HOSTNAME|ALTNAME/i;

export function isTlsError(err: unknown): boolean {
  const code = errorCode(err) ?? '';
  const message = err instanceof Error ? err.message : String(err);
  return TLS_ERROR.test(code) || /\bSSL\b|certificate|TLS/i.test(message);
}

export async function probePostgres(
  input: PostgresProbeInput,
  timeouts: ProbeTimeouts = {},
): Promise<PostgresProbeResult> {
  const client = new pg.Client({
    host: input.host,
    port: input.port,
    database: input.database,
    user: input.user,
    password: input.password,
    // The same TLS rules as the JIT issuer's admin session (libpq sslmode semantics).
    ssl: pgSslOptions({
      mode: input.tls.mode,
      ...(input.tls.ca ? { ca: input.tls.ca } : {}),
      ...(input.tls.serverName ? { serverName: input.tls.serverName } : {}),
    }),
    connectionTimeoutMillis: timeouts.connectMs ?? 5_000,
    query_timeout: timeouts.queryMs ?? 5_000,
    statement_timeout: timeouts.queryMs ?? 5_000,
    application_name: 'chaperone-operator-check',
  });
  // A broken connection after login emits 'error' on the client; without a listener that would
  // be an uncaught exception.
  client.on('error', () => undefined);
  try {
    try {
      await client.connect();
    } catch (err) {
      const code = errorCode(err);
      if (code === '28P01' || code === '28000') return { outcome: 'auth-failed', message: errorText(err) };
      if (code === '3D000') return { outcome: 'database-missing', message: errorText(err) };
      if (input.tls.mode !== 'disable' && isTlsError(err))
        return { outcome: 'tls-failed', message: errorText(err) };
      // A server error (5 characters, e.g. 53300 too many connections) means it answered.
      if (code && /^[0-9A-Z]{5}$/.test(code))
        return { outcome: 'error', reached: true, message: errorText(err) };
      return { outcome: 'unreachable', message: errorText(err) };
    }
    try {
      const me = await client.query<{
        rolname: string;
        rolsuper: boolean;
        rolcreaterole: boolean;
        version_num: string;
        version: string;
        ssl: boolean | null;
      }>(
        `SELECT r.rolname, r.rolsuper, r.rolcreaterole,
                current_setting('server_version_num') AS version_num,
                current_setting('server_version') AS version,
                (SELECT s.ssl FROM pg_stat_ssl s WHERE s.pid = pg_backend_pid()) AS ssl
           FROM pg_roles r WHERE r.rolname = current_user`,
      );
      const row = me.rows[0];
      if (!row) return { outcome: 'error', reached: true, message: 'the logged-in role is not in pg_roles' };
      const grants = await client.query<{
        name: string;
        exists: boolean;
        superuser: boolean;
        admin: boolean;
      }>(
        `SELECT g.name,
                x.oid IS NOT NULL AS exists,
                COALESCE(x.rolsuper, false) AS superuser,
                CASE WHEN x.oid IS NULL THEN false
                     ELSE pg_has_role(current_user, x.oid, 'MEMBER WITH ADMIN OPTION') END AS admin
           FROM unnest($1::text[]) WITH ORDINALITY AS g(name, i)
           LEFT JOIN pg_roles x ON x.rolname = g.name
          ORDER BY g.i`,
        [[...input.grantRoles]],
      );
      const grantRoles: GrantRoleInfo[] = grants.rows.map((g) => ({
        name: g.name,
        exists: g.exists,
        superuser: g.superuser,
        adminOption: g.admin,
      }));
      return {
        outcome: 'ok',
        serverVersionNum: Number(row.version_num),
        serverVersion: row.version,
        tls: row.ssl === true,
        role: { name: row.rolname, superuser: row.rolsuper, createRole: row.rolcreaterole },
        grantRoles,
      };
    } catch (err) {
      return { outcome: 'error', reached: true, message: errorText(err) };
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Opens a TCP connection and, if `readLine`, waits for the first line the server sends. */
function tcpProbe(
  host: string,
  port: number,
  timeoutMs: number,
  readLine: boolean,
): Promise<{ ok: true; line?: string } | { ok: false; message: string }> {
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    let buf = '';
    let settled = false;
    const done = (r: { ok: true; line?: string } | { ok: false; message: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(
      () =>
        done({
          ok: false,
          message: readLine ? `no answer within ${timeoutMs} ms` : `connect timed out after ${timeoutMs} ms`,
        }),
      timeoutMs,
    );
    socket.on('error', (err) => done({ ok: false, message: errorText(err) }));
    socket.on('connect', () => {
      if (!readLine) done({ ok: true });
    });
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0) done({ ok: true, line: buf.slice(0, nl).replace(/\r$/, '') });
      else if (buf.length > 1024) done({ ok: true, line: buf.slice(0, 255) });
    });
    socket.on('end', () =>
      done({ ok: false, message: 'the server closed the connection without a greeting' }),
    );
  });
}

export async function probeTcp(host: string, port: number, timeoutMs = 5_000): Promise<ProbeResult> {
  const r = await tcpProbe(host, port, timeoutMs, false);
  return r.ok ? { ok: true, detail: 'TCP connect' } : r;
}

export async function probeSsh(host: string, port: number, timeoutMs = 5_000): Promise<ProbeResult> {
  const r = await tcpProbe(host, port, timeoutMs, true);
  if (!r.ok) return r;
  const line = (r.line ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 255);
  if (!/^SSH-(2\.0|1\.99)-/.test(line)) {
    return {
      ok: false,
      message: `the server at ${host}:${port} does not speak SSH (it said ${JSON.stringify(line)})`,
    };
  }
  return { ok: true, detail: line };
}

/** GET <url>/version; any HTTP answer proves the server is there and (unless told not to) who it is. */
export function probeKubernetesApi(
  url: string,
  opts: { caPem?: string; insecureSkipTLSVerify?: boolean },
  timeoutMs = 5_000,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let target: URL;
    try {
      target = new URL(`${url.replace(/\/+$/, '')}/version`);
    } catch (err) {
      resolve({ ok: false, message: `not a URL: ${errorText(err)}` });
      return;
    }
    const req = httpsRequest(
      target,
      {
        method: 'GET',
        timeout: timeoutMs,
        rejectUnauthorized: !opts.insecureSkipTLSVerify,
        ...(opts.caPem ? { ca: opts.caPem } : {}),
        headers: { accept: 'application/json' },
      },
      (res) => {
        res.resume();
        resolve({ ok: true, detail: `HTTP ${res.statusCode} for GET /version` });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, message: errorText(err), tls: isTlsError(err) }));
    req.end();
  });
}

export interface ConnectionDepsOptions {
  kubeConfig: KubeConfig;
  operatorNamespace: string;
  timeouts?: ProbeTimeouts;
  recheckAfterMs?: number;
  notReadyRecheckAfterMs?: number;
  now?: () => Date;
}

/** The production deps of reconcileConnection. */
export function createConnectionDeps(opts: ConnectionDepsOptions): ConnectionReconcileDeps {
  const core = opts.kubeConfig.makeApiClient(CoreV1Api);
  const connectMs = opts.timeouts?.connectMs ?? 5_000;
  return {
    now: opts.now ?? (() => new Date()),
    operatorNamespace: opts.operatorNamespace,
    async readSecret(namespace, name): Promise<StoredSecret | undefined> {
      try {
        const secret = await core.readNamespacedSecret({ namespace, name });
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(secret.data ?? {}))
          out[k] = Buffer.from(v, 'base64').toString('utf8');
        return { data: out, annotations: secret.metadata?.annotations ?? {} };
      } catch (err) {
        if (apiErrorCode(err) === 404) return undefined;
        throw new Error(describeApiError(err));
      }
    },
    async serviceAccountExists(namespace, name) {
      try {
        await core.readNamespacedServiceAccount({ namespace, name });
        return true;
      } catch (err) {
        if (apiErrorCode(err) === 404) return false;
        throw new Error(describeApiError(err));
      }
    },
    probeTcp: (host, port) => probeTcp(host, port, connectMs),
    probePostgres: (input) => probePostgres(input, opts.timeouts),
    probeSsh: (host, port) => probeSsh(host, port, connectMs),
    probeKubernetesApi: (url, o) => probeKubernetesApi(url, o, connectMs),
    ...(opts.recheckAfterMs !== undefined ? { recheckAfterMs: opts.recheckAfterMs } : {}),
    ...(opts.notReadyRecheckAfterMs !== undefined
      ? { notReadyRecheckAfterMs: opts.notReadyRecheckAfterMs }
      : {}),
  };
}
