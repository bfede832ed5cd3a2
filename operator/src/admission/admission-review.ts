// admission.k8s.io/v1 AdmissionReview, the part the webhooks use. client-node has no types for it.

export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface AdmissionRequest<T = unknown> {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  userInfo: UserInfo;
  object?: T;
  oldObject?: T;
  dryRun?: boolean;
}

export interface AdmissionReview<T = unknown> {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request?: AdmissionRequest<T>;
  response?: AdmissionResponse;
}

/** RFC 6902 operation, as sent back base64-encoded in `response.patch`. */
export type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** What a webhook decides; the server turns it into the wire response. */
export type AdmissionVerdict =
  | { allowed: true; patch?: JsonPatchOperation[]; warnings?: string[] }
  /** `code` 400 for bad input, 403 for a refusal, 500 when the webhook itself failed. */
  | { allowed: false; code: 400 | 403 | 422 | 500; message: string };

export type AdmissionHandler = (request: AdmissionRequest) => Promise<AdmissionVerdict>;

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
}

export function toAdmissionResponse(uid: string, verdict: AdmissionVerdict): AdmissionResponse {
  if (!verdict.allowed) {
    return {
      uid,
      allowed: false,
      status: { code: verdict.code, message: verdict.message, reason: reasonOf(verdict.code) },
    };
  }
  const response: AdmissionResponse = { uid, allowed: true };
  if (verdict.patch && verdict.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(verdict.patch)).toString('base64');
  }
  if (verdict.warnings?.length) response.warnings = verdict.warnings;
  return response;
}

function reasonOf(code: number): string {
  if (code === 400) return 'BadRequest';
  if (code === 403) return 'Forbidden';
  if (code === 422) return 'Invalid';
  return 'InternalError';
}

/** JSON Pointer escaping (RFC 6901) for keys such as annotation names that contain '/'. */
export function pointerSegment(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}
