// The ownership mark the operator writes on every login role it creates (COMMENT ON ROLE). It is the
// only state the sweeper relies on: a restarted or newly elected operator lists the server's roles,
// keeps those whose comment parses as a mark, and never touches anything else, whatever its name.

export const ROLE_MARK_VERSION = 1;

/** Login role names the issuer accepts as a prefix (also the CRD's usernamePrefix pattern). */
export const ROLE_PREFIX_PATTERN = /^[a-z_][a-z0-9_]*$/;
/** PostgreSQL truncates identifiers to NAMEDATALEN-1 bytes. */
export const MAX_ROLE_NAME_BYTES = 63;

export interface RoleMark {
  v: typeof ROLE_MARK_VERSION;
  /** `namespace/name` of the Connection the role was issued for. */
  connection: string;
  /** `namespace/name` of the pod whose sidecar asked for it. */
  pod: string;
  /** The pod's uid: a pod re-created under the same name is a different pod. */
  podUid: string;
  createdAt: string;
  /** ISO time; equals the role's VALID UNTIL when it was created. */
  expiresAt: string;
  sessionId?: string;
  /** ISO time the sweeper disabled the role (NOLOGIN); the drop clock starts here. */
  disabledAt?: string;
}

/** The comment text: `{"chaperone":{…}}`, a JSON object so other tools can add keys beside it. */
export function formatRoleMark(mark: RoleMark): string {
  const m: RoleMark = {
    v: ROLE_MARK_VERSION,
    connection: mark.connection,
    pod: mark.pod,
    podUid: mark.podUid,
    createdAt: mark.createdAt,
    expiresAt: mark.expiresAt,
  };
  if (mark.sessionId !== undefined) m.sessionId = mark.sessionId;
  if (mark.disabledAt !== undefined) m.disabledAt = mark.disabledAt;
  return JSON.stringify({ chaperone: m });
}

const isoTime = (v: unknown): v is string => typeof v === 'string' && Number.isFinite(Date.parse(v));
const nsName = (v: unknown): v is string =>
  typeof v === 'string' && v.length <= 317 && /^[^/\s]+\/[^/\s]+$/.test(v);
const shortText = (v: unknown, max: number): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= max;

/**
 * The mark in a role's comment, or undefined when the comment is not exactly ours (missing, other
 * text, malformed JSON, another version, a field of the wrong type). Undefined means "never touch".
 */
export function parseRoleMark(comment: string | null | undefined): RoleMark | undefined {
  if (!comment || comment.length > 4096) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(comment);
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return undefined;
  const c = (doc as Record<string, unknown>).chaperone;
  if (typeof c !== 'object' || c === null || Array.isArray(c)) return undefined;
  const m = c as Record<string, unknown>;
  if (m.v !== ROLE_MARK_VERSION) return undefined;
  if (!nsName(m.connection) || !nsName(m.pod) || !shortText(m.podUid, 128)) return undefined;
  if (!isoTime(m.createdAt) || !isoTime(m.expiresAt)) return undefined;
  if (m.sessionId !== undefined && !shortText(m.sessionId, 256)) return undefined;
  if (m.disabledAt !== undefined && !isoTime(m.disabledAt)) return undefined;
  const mark: RoleMark = {
    v: ROLE_MARK_VERSION,
    connection: m.connection,
    pod: m.pod,
    podUid: m.podUid,
    createdAt: m.createdAt,
    expiresAt: m.expiresAt,
  };
  if (m.sessionId !== undefined) mark.sessionId = m.sessionId;
  if (m.disabledAt !== undefined) mark.disabledAt = m.disabledAt;
  return mark;
}

const SUFFIX_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
export const ROLE_SUFFIX_LENGTH = 10;
/** Most characters of the pod name kept in the role name: enough to recognise it in pg_stat_activity. */
const POD_PART_MAX = 20;

/** 10 characters of [a-z2-7] (50 bits) from the given random bytes (≥ 10 of them). */
export function roleSuffix(random: Uint8Array): string {
  if (random.length < ROLE_SUFFIX_LENGTH)
    throw new Error(`roleSuffix needs ${ROLE_SUFFIX_LENGTH} random bytes`);
  let out = '';
  for (let i = 0; i < ROLE_SUFFIX_LENGTH; i++) out += SUFFIX_ALPHABET[random[i]! & 31];
  return out;
}

/**
 * `<prefix>[_]<readable part of the pod name>_<suffix>`: lower-case, [a-z0-9_] only, at most 63
 * bytes, starting with the prefix, so it is a valid unquoted identifier and sorts by prefix.
 */
export function jitRoleName(prefix: string, podName: string, suffix: string): string {
  if (!ROLE_PREFIX_PATTERN.test(prefix) || prefix.length > 32) {
    throw new Error(
      `usernamePrefix ${JSON.stringify(prefix)} must match ^[a-z_][a-z0-9_]*$ and be at most 32 characters`,
    );
  }
  const sep = prefix.endsWith('_') ? '' : '_';
  const budget = MAX_ROLE_NAME_BYTES - prefix.length - sep.length - 1 - suffix.length;
  if (!/^[a-z0-9]+$/.test(suffix) || budget < 0) {
    throw new Error('role suffix must be [a-z0-9]+ and fit in 63 bytes with the prefix');
  }
  const podPart = podName
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, Math.max(0, Math.min(POD_PART_MAX, budget)))
    .replace(/^_+|_+$/g, '');
  return podPart ? `${prefix}${sep}${podPart}_${suffix}` : `${prefix}${sep}${suffix}`;
}
