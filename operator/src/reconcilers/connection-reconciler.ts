// Connection reconcile: can the operator mint credentials for this target (CredentialsValid), can it
// reach the target (Reachable), and so is the Connection usable (Ready)? All I/O goes through
// `deps`; this module decides what the findings mean and tells the user what to fix.

import {
  adminSecretRefusal,
  type Condition,
  type Connection,
  type ConnectionStatus,
  type PostgresTLSMode,
} from '@chaperone/api';
import sshpk from 'sshpk';
import {
  type ConditionInput,
  type ConditionStatus,
  getCondition,
  setCondition,
} from '../controller/status.js';
import type { EventSpec, ReconcileOutcome } from './types.js';

/** Decoded (UTF-8) data of a Secret. */
export type SecretData = Readonly<Record<string, string>>;

/** A Secret as the reconciler sees it: decoded data, and annotations (admin Secrets' namespace allow-list). */
export interface StoredSecret {
  data: SecretData;
  annotations: Readonly<Record<string, string>>;
}

export type ProbeResult = { ok: true; detail: string } | { ok: false; message: string; tls?: boolean };

export interface PostgresProbeInput {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  tls: { mode: PostgresTLSMode; ca?: string; serverName?: string };
  grantRoles: readonly string[];
}

export interface PostgresRoleInfo {
  name: string;
  superuser: boolean;
  createRole: boolean;
}

export interface GrantRoleInfo {
  name: string;
  exists: boolean;
  /** The role is a superuser role (only a superuser can grant it). */
  superuser: boolean;
  /** The admin role holds it WITH ADMIN OPTION (or is superuser). */
  adminOption: boolean;
}

export type PostgresProbeResult =
  | {
      outcome: 'ok';
      /** server_version_num, e.g. 150004. */
      serverVersionNum: number;
      serverVersion: string;
      tls: boolean;
      role: PostgresRoleInfo;
      grantRoles: GrantRoleInfo[];
    }
  | { outcome: 'unreachable'; message: string }
  | { outcome: 'tls-failed'; message: string }
  | { outcome: 'auth-failed'; message: string }
  | { outcome: 'database-missing'; message: string }
  | { outcome: 'error'; reached: boolean; message: string };

export interface ConnectionReconcileDeps {
  now(): Date;
  /** Where admin Secrets (adminSecretRef, ssh caSecretRef, tls caSecretRef) live. */
  operatorNamespace: string;
  /** undefined when the Secret does not exist; throws on other failures (e.g. forbidden). */
  readSecret(namespace: string, name: string): Promise<StoredSecret | undefined>;
  /** false when the ServiceAccount does not exist; throws on other failures. */
  serviceAccountExists(namespace: string, name: string): Promise<boolean>;
  probeTcp(host: string, port: number): Promise<ProbeResult>;
  probePostgres(input: PostgresProbeInput): Promise<PostgresProbeResult>;
  /** TCP connect and the server's SSH identification line. */
  probeSsh(host: string, port: number): Promise<ProbeResult>;
  /** HTTPS request to the API server, verifying its certificate unless told not to. */
  probeKubernetesApi(
    url: string,
    opts: { caPem?: string; insecureSkipTLSVerify?: boolean },
  ): Promise<ProbeResult>;
  /** Re-check a Ready Connection this often. Default 5 min. */
  recheckAfterMs?: number;
  /** Re-check a Connection that is not Ready this often (Secrets are not watched). Default 1 min. */
  notReadyRecheckAfterMs?: number;
}

export const CONNECTION_CONDITIONS = {
  ready: 'Ready',
  credentialsValid: 'CredentialsValid',
  reachable: 'Reachable',
} as const;

interface Finding {
  status: ConditionStatus;
  reason: string;
  message: string;
}

interface Findings {
  credentials: Finding;
  reachable: Finding;
}

const t = (reason: string, message: string): Finding => ({ status: 'True', reason, message });
const f = (reason: string, message: string): Finding => ({ status: 'False', reason, message });
const u = (reason: string, message: string): Finding => ({ status: 'Unknown', reason, message });

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function quoteList(names: readonly string[]): string {
  return names.map((n) => `"${n}"`).join(', ');
}

/** A SQL identifier as PostgreSQL prints it in advice (quoted when needed). */
function ident(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

async function readSecretSafely(
  deps: ConnectionReconcileDeps,
  name: string,
): Promise<{ data?: SecretData; annotations?: Readonly<Record<string, string>>; error?: string }> {
  try {
    const secret = await deps.readSecret(deps.operatorNamespace, name);
    return secret ? { data: secret.data, annotations: secret.annotations } : {};
  } catch (err) {
    return { error: errorText(err) };
  }
}

function secretReadFailed(ns: string, name: string, error: string): string {
  return (
    `could not read Secret "${name}" in namespace "${ns}": ${error}; ` +
    `the operator's ServiceAccount needs get on secrets in "${ns}"`
  );
}

async function tcpFinding(
  deps: ConnectionReconcileDeps,
  host: string,
  port: number,
  why: string,
): Promise<Finding> {
  try {
    const r = await deps.probeTcp(host, port);
    return r.ok
      ? t('Reached', `TCP connection to ${host}:${port} succeeded (${why})`)
      : f(
          'Unreachable',
          `cannot connect to ${host}:${port}: ${r.message}; check spec.endpoint.host and port, ` +
            'that the server runs, and that network policies let the operator reach it',
        );
  } catch (err) {
    return u('ProbeFailed', `reachability check failed: ${errorText(err)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// postgres

/** The server's rule: superuser, or ADMIN OPTION; before PostgreSQL 16 CREATEROLE alone may grant any non-superuser role. */
export function canGrantRole(
  role: PostgresRoleInfo,
  grant: GrantRoleInfo,
  serverVersionNum: number,
): boolean {
  if (role.superuser) return true;
  if (grant.superuser) return false;
  if (grant.adminOption) return true;
  return serverVersionNum < 160000 && role.createRole;
}

async function checkPostgres(conn: Connection, deps: ConnectionReconcileDeps): Promise<Findings> {
  const spec = conn.spec;
  const creds = spec.credentials.postgres;
  const host = spec.endpoint.host;
  const port = spec.endpoint.port;
  if (!creds || !host || !port) {
    const m =
      'spec is incomplete: a postgres Connection needs spec.endpoint.host, spec.endpoint.port and spec.credentials.postgres';
    return { credentials: f('InvalidSpec', m), reachable: f('InvalidSpec', m) };
  }
  const ns = deps.operatorNamespace;
  const ref = creds.adminSecretRef;
  const userKey = ref.usernameKey ?? 'username';
  const passKey = ref.passwordKey ?? 'password';

  // TLS first: without the CA the server's identity cannot be checked, so nothing is sent to it.
  const mode: PostgresTLSMode = spec.endpoint.tls?.mode ?? 'verify-full';
  let ca: string | undefined;
  const caRef = spec.endpoint.tls?.caSecretRef;
  if (caRef && mode !== 'disable') {
    const caKey = caRef.key ?? 'ca.crt';
    const r = await readSecretSafely(deps, caRef.name);
    const notChecked = u(
      'NotChecked',
      'not checked: the server certificate cannot be verified yet (see Reachable)',
    );
    if (r.error) {
      return {
        credentials: notChecked,
        reachable: u('CASecretReadFailed', secretReadFailed(ns, caRef.name, r.error)),
      };
    }
    if (!r.data) {
      return {
        credentials: notChecked,
        reachable: f(
          'CASecretNotFound',
          `Secret "${caRef.name}" (spec.endpoint.tls.caSecretRef) not found in namespace "${ns}" (the operator's ` +
            `namespace): create it with the PEM CA bundle under key "${caKey}", e.g. ` +
            `kubectl -n ${ns} create secret generic ${caRef.name} --from-file=${caKey}=ca.pem`,
        ),
      };
    }
    ca = r.data[caKey];
    if (!ca?.includes('-----BEGIN CERTIFICATE-----')) {
      return {
        credentials: notChecked,
        reachable: f(
          'CASecretInvalid',
          `Secret "${ns}/${caRef.name}" has no PEM certificate under key "${caKey}" ` +
            '(spec.endpoint.tls.caSecretRef.key): put the CA bundle that signs the server certificate there',
        ),
      };
    }
  }

  const secret = await readSecretSafely(deps, ref.name);
  if (secret.error || !secret.data) {
    const credentials = secret.error
      ? u('AdminSecretReadFailed', secretReadFailed(ns, ref.name, secret.error))
      : f(
          'AdminSecretNotFound',
          `Secret "${ref.name}" (spec.credentials.postgres.adminSecretRef) not found in namespace "${ns}" (the ` +
            `operator's namespace): create it there with keys "${userKey}" and "${passKey}" for a role with ` +
            `CREATEROLE, e.g. kubectl -n ${ns} create secret generic ${ref.name} ` +
            `--from-literal=${userKey}=chaperone_admin --from-literal=${passKey}=...`,
        );
    return {
      credentials,
      reachable: await tcpFinding(deps, host, port, 'login not attempted without credentials'),
    };
  }
  const missing = [userKey, passKey].filter((k) => !secret.data?.[k]);
  if (missing.length > 0) {
    return {
      credentials: f(
        'AdminSecretInvalid',
        `Secret "${ns}/${ref.name}" has no (or an empty) key ${quoteList(missing)}: add ` +
          `${missing.length > 1 ? 'them' : 'it'}, or name the keys it has in ` +
          'spec.credentials.postgres.adminSecretRef.usernameKey / passwordKey',
      ),
      reachable: await tcpFinding(deps, host, port, 'login not attempted without credentials'),
    };
  }
  const refusal = adminSecretRefusal(
    { namespace: ns, name: ref.name, annotations: secret.annotations },
    conn.metadata.namespace ?? '',
  );
  if (refusal) {
    return {
      credentials: f('AdminSecretNotAllowed', refusal),
      reachable: await tcpFinding(deps, host, port, 'login not attempted: the admin Secret is not allowed'),
    };
  }
  const user = secret.data[userKey]!;
  const database = creds.database ?? spec.endpoint.database ?? 'postgres';
  const target = `${host}:${port}`;
  let probe: PostgresProbeResult;
  try {
    probe = await deps.probePostgres({
      host,
      port,
      database,
      user,
      password: secret.data[passKey]!,
      tls: {
        mode,
        ...(ca ? { ca } : {}),
        ...(spec.endpoint.tls?.serverName ? { serverName: spec.endpoint.tls.serverName } : {}),
      },
      grantRoles: creds.grantRoles,
    });
  } catch (err) {
    probe = { outcome: 'error', reached: false, message: errorText(err) };
  }
  const notChecked = u('NotChecked', 'not checked: the operator could not reach the server (see Reachable)');
  switch (probe.outcome) {
    case 'unreachable':
      return {
        credentials: notChecked,
        reachable: f(
          'Unreachable',
          `cannot connect to PostgreSQL at ${target}: ${probe.message}; check spec.endpoint.host and port, that ` +
            'the server runs, and that network policies let the operator reach it',
        ),
      };
    case 'tls-failed':
      return {
        credentials: notChecked,
        reachable: f(
          'TLSHandshakeFailed',
          `TLS (mode ${mode}) to PostgreSQL at ${target} failed: ${probe.message}; check spec.endpoint.tls ` +
            '(caSecretRef holds the CA that signs the server certificate, serverName matches it) or the ' +
            "server's ssl settings",
        ),
      };
    case 'auth-failed':
      return {
        credentials: f(
          'AuthenticationFailed',
          `PostgreSQL at ${target} refused the login of role "${user}" (from Secret "${ns}/${ref.name}", key ` +
            `"${userKey}"): ${probe.message}; put the role's current password under key "${passKey}" of that ` +
            'Secret, or fix the role name',
        ),
        reachable: t('Reached', `PostgreSQL at ${target} answered (TLS mode ${mode})`),
      };
    case 'database-missing':
      return {
        credentials: f(
          'DatabaseNotFound',
          `database "${database}" does not exist on ${target}: ${probe.message}; set ` +
            'spec.credentials.postgres.database (or spec.endpoint.database) to a database the admin role can connect to',
        ),
        reachable: t('Reached', `PostgreSQL at ${target} answered (TLS mode ${mode})`),
      };
    case 'error':
      return {
        credentials: u('ProbeFailed', `the credentials check failed: ${probe.message}`),
        reachable: probe.reached
          ? t('Reached', `PostgreSQL at ${target} answered (TLS mode ${mode})`)
          : u('ProbeFailed', `the reachability check failed: ${probe.message}`),
      };
    case 'ok':
      break;
  }
  const reachable = t(
    'Reached',
    `connected to PostgreSQL ${probe.serverVersion} at ${target} (${probe.tls ? `TLS, mode ${mode}` : 'no TLS'})`,
  );
  const role = probe.role;
  const r = ident(role.name);
  if (!role.superuser && !role.createRole) {
    return {
      credentials: f(
        'CannotCreateRoles',
        `role "${role.name}" can log in but cannot create the per-session login roles: run ` +
          `ALTER ROLE ${r} CREATEROLE; (or use a superuser in Secret "${ns}/${ref.name}")`,
      ),
      reachable,
    };
  }
  const absent = probe.grantRoles.filter((g) => !g.exists).map((g) => g.name);
  if (absent.length > 0) {
    return {
      credentials: f(
        'GrantRoleNotFound',
        `spec.credentials.postgres.grantRoles names roles that do not exist on ${target}: ${quoteList(absent)}; ` +
          `create them (e.g. CREATE ROLE ${ident(absent[0]!)} NOLOGIN; and grant it what agents need) or remove them`,
      ),
      reachable,
    };
  }
  const superGrants = probe.grantRoles.filter((g) => g.superuser && !role.superuser).map((g) => g.name);
  if (superGrants.length > 0) {
    return {
      credentials: f(
        'CannotGrantRoles',
        `grantRoles ${quoteList(superGrants)} are superuser roles, which only a superuser can grant, and ` +
          `role "${role.name}" is not one: grant agents a role without SUPERUSER`,
      ),
      reachable,
    };
  }
  const ungrantable = probe.grantRoles
    .filter((g) => !canGrantRole(role, g, probe.serverVersionNum))
    .map((g) => g.name);
  if (ungrantable.length > 0) {
    return {
      credentials: f(
        'CannotGrantRoles',
        `role "${role.name}" cannot grant ${quoteList(ungrantable)} to the login roles it creates: run ` +
          `GRANT ${ungrantable.map(ident).join(', ')} TO ${r} WITH ADMIN OPTION;`,
      ),
      reachable,
    };
  }
  return {
    credentials: t(
      'Valid',
      `role "${role.name}" can log in, create login roles and grant ${quoteList(creds.grantRoles)}`,
    ),
    reachable,
  };
}

// ---------------------------------------------------------------------------------------------
// ssh

export type SshCaKeyCheck =
  | { ok: true; type: string; fingerprint: string }
  | { ok: false; reason: string; message: string };

/** Parses an OpenSSH (or PEM) private key as the CA that signs user certificates. */
export function checkSshCaKey(text: string): SshCaKeyCheck {
  try {
    const key = sshpk.parsePrivateKey(text, 'auto');
    return { ok: true, type: key.type, fingerprint: key.fingerprint('sha256').toString() };
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === 'KeyEncryptedError') {
      return {
        ok: false,
        reason: 'CAKeyEncrypted',
        message:
          'the CA private key is passphrase-protected; store an unencrypted key (the Secret protects it)',
      };
    }
    return {
      ok: false,
      reason: 'CAKeyInvalid',
      message: `not a private key the operator can sign with (${errorText(err)}); store the private key file ssh-keygen wrote (not the .pub)`,
    };
  }
}

async function checkSsh(conn: Connection, deps: ConnectionReconcileDeps): Promise<Findings> {
  const spec = conn.spec;
  const creds = spec.credentials.ssh;
  const host = spec.endpoint.host;
  const port = spec.endpoint.port;
  if (!creds || !host || !port) {
    const m =
      'spec is incomplete: an ssh Connection needs spec.endpoint.host, spec.endpoint.port and spec.credentials.ssh';
    return { credentials: f('InvalidSpec', m), reachable: f('InvalidSpec', m) };
  }
  const ns = deps.operatorNamespace;
  const ref = creds.caSecretRef;
  const key = ref.key ?? 'ca';
  let credentials: Finding;
  const secret = await readSecretSafely(deps, ref.name);
  if (secret.error) {
    credentials = u('CASecretReadFailed', secretReadFailed(ns, ref.name, secret.error));
  } else if (!secret.data) {
    credentials = f(
      'CASecretNotFound',
      `Secret "${ref.name}" (spec.credentials.ssh.caSecretRef) not found in namespace "${ns}" (the operator's ` +
        `namespace): create it with the OpenSSH user CA private key under key "${key}", e.g. ` +
        `ssh-keygen -t ed25519 -N '' -f user-ca && kubectl -n ${ns} create secret generic ${ref.name} --from-file=${key}=user-ca`,
    );
  } else if (
    adminSecretRefusal(
      { namespace: ns, name: ref.name, annotations: secret.annotations },
      conn.metadata.namespace ?? '',
    )
  ) {
    credentials = f(
      'AdminSecretNotAllowed',
      adminSecretRefusal(
        { namespace: ns, name: ref.name, annotations: secret.annotations },
        conn.metadata.namespace ?? '',
      ) as string,
    );
  } else if (!secret.data[key]) {
    credentials = f(
      'CASecretInvalid',
      `Secret "${ns}/${ref.name}" has no key "${key}": put the CA private key there or name its key in ` +
        'spec.credentials.ssh.caSecretRef.key',
    );
  } else {
    const parsed = checkSshCaKey(secret.data[key]);
    credentials = parsed.ok
      ? t(
          'Valid',
          `user CA key ${parsed.type} ${parsed.fingerprint} can sign certificates for ${quoteList(creds.principals)}; ` +
            "the target's sshd must list its public key in TrustedUserCAKeys",
        )
      : f(parsed.reason, `Secret "${ns}/${ref.name}" key "${key}": ${parsed.message}`);
  }
  let reachable: Finding;
  try {
    const r = await deps.probeSsh(host, port);
    reachable = r.ok
      ? t(
          'Reached',
          `SSH server at ${host}:${port} answered (${r.detail}); the sidecar verifies its host key`,
        )
      : f(
          'Unreachable',
          `no SSH server answered at ${host}:${port}: ${r.message}; check spec.endpoint.host and port, that sshd ` +
            'runs, and that network policies let the operator reach it',
        );
  } catch (err) {
    reachable = u('ProbeFailed', `reachability check failed: ${errorText(err)}`);
  }
  return { credentials, reachable };
}

// ---------------------------------------------------------------------------------------------
// kubernetes

async function checkKubernetes(conn: Connection, deps: ConnectionReconcileDeps): Promise<Findings> {
  const spec = conn.spec;
  const creds = spec.credentials.kubernetes;
  const url = spec.endpoint.url;
  if (!creds || !url) {
    const m =
      'spec is incomplete: a kubernetes Connection needs spec.endpoint.url and spec.credentials.kubernetes';
    return { credentials: f('InvalidSpec', m), reachable: f('InvalidSpec', m) };
  }
  const saNs = creds.serviceAccountRef.namespace ?? conn.metadata.namespace ?? 'default';
  const saName = creds.serviceAccountRef.name;
  let credentials: Finding;
  try {
    credentials = (await deps.serviceAccountExists(saNs, saName))
      ? t('Valid', `ServiceAccount "${saNs}/${saName}" exists; its tokens are requested with TokenRequest`)
      : f(
          'ServiceAccountNotFound',
          `ServiceAccount "${saName}" (spec.credentials.kubernetes.serviceAccountRef) not found in namespace ` +
            `"${saNs}": create it (kubectl -n ${saNs} create serviceaccount ${saName}) and bind it the RBAC agents may use`,
        );
  } catch (err) {
    credentials = u(
      'ServiceAccountReadFailed',
      `could not read ServiceAccount "${saNs}/${saName}": ${errorText(err)}; the operator's ServiceAccount needs get on serviceaccounts`,
    );
  }
  let caPem: string | undefined;
  if (spec.endpoint.caBundle) {
    caPem = Buffer.from(spec.endpoint.caBundle, 'base64').toString('utf8');
    if (!caPem.includes('-----BEGIN CERTIFICATE-----')) {
      return {
        credentials,
        reachable: f(
          'CABundleInvalid',
          'spec.endpoint.caBundle is not base64 of a PEM certificate bundle: use the certificate-authority-data of a kubeconfig',
        ),
      };
    }
  }
  let reachable: Finding;
  try {
    const r = await deps.probeKubernetesApi(url, {
      ...(caPem ? { caPem } : {}),
      ...(spec.endpoint.insecureSkipTLSVerify ? { insecureSkipTLSVerify: true } : {}),
    });
    if (r.ok) {
      reachable = t('Reached', `API server at ${url} answered (${r.detail})`);
    } else if (r.tls) {
      reachable = f(
        'TLSVerificationFailed',
        `the API server at ${url} did not prove its identity: ${r.message}; set spec.endpoint.caBundle to the CA ` +
          "that signs its certificate (a kubeconfig's certificate-authority-data)",
      );
    } else {
      reachable = f(
        'Unreachable',
        `cannot reach the API server at ${url}: ${r.message}; check spec.endpoint.url and that network policies let the operator reach it`,
      );
    }
  } catch (err) {
    reachable = u('ProbeFailed', `reachability check failed: ${errorText(err)}`);
  }
  return { credentials, reachable };
}

// ---------------------------------------------------------------------------------------------

function readyFrom(findings: Findings): Finding {
  const { credentials, reachable } = findings;
  if (credentials.status === 'True' && reachable.status === 'True') {
    return t('Ready', 'credentials can be minted and the target is reachable');
  }
  const failing = [
    ...(credentials.status !== 'True' ? [{ name: 'CredentialsValid', ...credentials }] : []),
    ...(reachable.status !== 'True' ? [{ name: 'Reachable', ...reachable }] : []),
  ];
  // A definite failure explains more than an unknown that follows from it.
  const lead = failing.find((x) => x.status === 'False') ?? failing[0]!;
  const status: ConditionStatus = failing.some((x) => x.status === 'False') ? 'False' : 'Unknown';
  const message = failing.map((x) => `${x.name}: ${x.message}`).join('; ');
  return { status, reason: lead.reason, message };
}

function transitionEvent(previous: Condition | undefined, next: Finding): EventSpec[] {
  if (previous && previous.status === next.status && previous.reason === next.reason) return [];
  if (next.status === 'True') {
    return [{ type: 'Normal', reason: 'Ready', message: `Connection is ready: ${next.message}` }];
  }
  return [{ type: 'Warning', reason: next.reason, message: next.message }];
}

export async function reconcileConnection(
  conn: Connection,
  deps: ConnectionReconcileDeps,
): Promise<ReconcileOutcome<ConnectionStatus>> {
  let findings: Findings;
  switch (conn.spec?.type) {
    case 'postgres':
      findings = await checkPostgres(conn, deps);
      break;
    case 'ssh':
      findings = await checkSsh(conn, deps);
      break;
    case 'kubernetes':
      findings = await checkKubernetes(conn, deps);
      break;
    default: {
      const m = `spec.type ${JSON.stringify(conn.spec?.type)} is not one of postgres, ssh, kubernetes`;
      findings = { credentials: f('InvalidSpec', m), reachable: f('InvalidSpec', m) };
    }
  }
  const now = deps.now();
  const generation = conn.metadata.generation;
  const previous = conn.status?.conditions;
  const ready = readyFrom(findings);
  const set = (list: Condition[] | undefined, type: string, x: Finding) =>
    setCondition(
      list,
      {
        type,
        ...x,
        ...(generation !== undefined ? { observedGeneration: generation } : {}),
      } as ConditionInput,
      now,
    );
  let conditions = set(previous, CONNECTION_CONDITIONS.ready, ready);
  conditions = set(conditions, CONNECTION_CONDITIONS.credentialsValid, findings.credentials);
  conditions = set(conditions, CONNECTION_CONDITIONS.reachable, findings.reachable);
  return {
    status: { ...(generation !== undefined ? { observedGeneration: generation } : {}), conditions },
    events: transitionEvent(getCondition(previous, CONNECTION_CONDITIONS.ready), ready),
    requeueAfterMs:
      ready.status === 'True' ? (deps.recheckAfterMs ?? 5 * 60_000) : (deps.notReadyRecheckAfterMs ?? 60_000),
  };
}
