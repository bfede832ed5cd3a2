// The detector names and operation classes are part of the AccessPolicy API: keep them aligned with
// the generated CRD types at compile time (tsc -b checks this file).
import type { GuardrailDetector, PostgresOperation } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import {
  type OperationClass,
  POSTGRES_GUARDRAIL_DETECTORS,
  type PostgresGuardrailDetector,
} from './types.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

// The CRD's detectors minus those of the other gateways.
type CrdPostgresDetector = Exclude<
  GuardrailDetector,
  | 'rm-rf'
  | 'privilege-escalation'
  | 'remote-download-exec'
  | 'delete-namespace'
  | 'read-secrets'
  | 'exec'
  | 'delete-collection'
>;

const detectorsMatch: Equal<PostgresGuardrailDetector, CrdPostgresDetector> = true;
// Every operation a rule can name is a class classifySql produces ('session' is ours alone).
const operationsCovered: Equal<Exclude<PostgresOperation, OperationClass>, never> = true;

describe('alignment with the AccessPolicy CRD', () => {
  it('uses the CRD spelling of every postgres detector', () => {
    expect(detectorsMatch && operationsCovered).toBe(true);
    expect(new Set(POSTGRES_GUARDRAIL_DETECTORS).size).toBe(10);
  });
});
