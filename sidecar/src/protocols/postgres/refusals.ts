import type { RefusalKind } from '../../pipeline/refusal.js';
import { SqlState } from './wire/codes.js';

/** The SQLSTATE an agent's driver sees for each pipeline refusal. */
export const REFUSAL_SQLSTATE: Readonly<Record<RefusalKind, string>> = {
  'no-policy': SqlState.invalidAuthorization,
  'recording-unavailable': '53000', // insufficient_resources: the spool is full
  'no-credential': SqlState.cannotConnectNow,
  'upstream-failed': SqlState.connectionFailure,
  denied: SqlState.insufficientPrivilege,
  'approval-denied': SqlState.insufficientPrivilege,
  'approval-expired': SqlState.insufficientPrivilege,
  'approval-unavailable': SqlState.insufficientPrivilege,
};
