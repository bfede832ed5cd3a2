import type { KubeDecision } from './hooks.js';
import { describeAttributes, type KubeRequestAttributes } from './request-attributes.js';

// metav1.Status bodies: kubectl shows `message` only when `code` equals the HTTP status code
// (otherwise it reports an unknown InternalError), so every error the gateway makes is built here.

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    causes?: Array<{ reason?: string; message: string }>;
  };
  code: number;
}

const REASONS: Record<number, string> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  408: 'Timeout',
  413: 'RequestEntityTooLarge',
  415: 'UnsupportedMediaType',
  429: 'TooManyRequests',
  500: 'InternalError',
  502: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

export function kubeStatus(code: number, message: string, details?: KubeStatus['details']): KubeStatus {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: REASONS[code] ?? (code >= 500 ? 'InternalError' : 'BadRequest'),
    ...(details ? { details } : {}),
    code,
  };
}

export function statusJson(code: number, message: string, details?: KubeStatus['details']): string {
  return JSON.stringify(kubeStatus(code, message, details));
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  501: 'Not Implemented',
};

/** A whole HTTP/1.1 response for a raw socket (upgrade refusals, parser errors), connection closed. */
export function rawStatusResponse(code: number, message: string): string {
  const body = statusJson(code, message);
  return [
    `HTTP/1.1 ${code} ${STATUS_TEXT[code] ?? 'Error'}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

/** The 403 message for a denial: what was denied, by which rule, which AccessRequest, why. */
export function denialMessage(
  a: KubeRequestAttributes,
  d: Extract<KubeDecision, { action: 'deny' }>,
): string {
  const rule = d.rule ? ` by rule "${d.rule}"` : '';
  const ar = d.accessRequest ? ` (AccessRequest ${d.accessRequest})` : '';
  return `chaperone: ${describeAttributes(a)} denied${rule}${ar}: ${d.reason}`;
}
