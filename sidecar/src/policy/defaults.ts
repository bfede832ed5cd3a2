import type { Guardrail, MaskingStrategy, SecretDataMasking } from '@chaperone/api';

// The CRD's defaults, for objects that never went through an API server (standalone YAML).
// defaults.test.ts compares each constant with crds/chaperone.dev_accesspolicies.yaml, so they cannot drift.

/** spec.guardrails when the field is absent. `[]` is not absent: it turns guardrails off. */
export const DEFAULT_GUARDRAILS: readonly Readonly<Guardrail>[] = Object.freeze([
  { detector: 'delete-without-where', action: 'approve' },
  { detector: 'update-without-where', action: 'approve' },
  { detector: 'truncate', action: 'approve' },
  { detector: 'drop', action: 'approve' },
  { detector: 'file-access', action: 'deny' },
  { detector: 'alter-system', action: 'deny' },
  { detector: 'set-role', action: 'deny' },
  { detector: 'rm-rf', action: 'approve' },
  { detector: 'privilege-escalation', action: 'approve' },
  { detector: 'remote-download-exec', action: 'approve' },
  { detector: 'delete-namespace', action: 'approve' },
  { detector: 'delete-collection', action: 'approve' },
  { detector: 'read-secrets', action: 'approve' },
] as const);

/** spec.approval.required and spec.approval.timeout. */
export const APPROVAL_DEFAULTS = Object.freeze({ required: 1, timeout: '10m' });

/** CRD bounds of spec.approval (the CEL rule on timeout, minimum/maximum on required). */
export const APPROVAL_LIMITS = Object.freeze({
  minRequired: 1,
  maxRequired: 10,
  minTimeoutMs: 10_000,
  maxTimeoutMs: 86_400_000,
});

/** spec.masking.{columns,detectors}[].strategy, spec.masking.leakage, spec.masking.kubernetes.secretData. */
export const MASKING_DEFAULTS: Readonly<{
  strategy: MaskingStrategy;
  leakage: 'deny' | 'approve';
  secretData: SecretDataMasking;
}> = Object.freeze({ strategy: 'redact', leakage: 'deny', secretData: 'redact' });
