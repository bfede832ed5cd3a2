import type { Guardrail, GuardrailAction, GuardrailDetector } from '@chaperone/api';
import { DEFAULT_GUARDRAILS } from './defaults.js';
import type { OperationType, PolicyAction, Risk } from './types.js';

/** Which protocol each detector belongs to: only detectors of the operation's protocol apply. */
export const GUARDRAIL_PROTOCOLS: Readonly<Record<GuardrailDetector, OperationType>> = Object.freeze({
  'delete-without-where': 'postgres',
  'update-without-where': 'postgres',
  truncate: 'postgres',
  drop: 'postgres',
  'unbounded-select': 'postgres',
  'copy-to': 'postgres',
  'set-role': 'postgres',
  'alter-system': 'postgres',
  'file-access': 'postgres',
  'multi-statement-write': 'postgres',
  'rm-rf': 'ssh',
  'privilege-escalation': 'ssh',
  'remote-download-exec': 'ssh',
  'delete-namespace': 'kubernetes',
  'read-secrets': 'kubernetes',
  exec: 'kubernetes',
  'delete-collection': 'kubernetes',
});

/** deny > approve > allow: the most restrictive answer wins, and guardrails only ever move up. */
export const SEVERITY: Readonly<Record<PolicyAction, number>> = Object.freeze({
  allow: 1,
  approve: 2,
  deny: 3,
});

/** A policy's guardrails by detector; spec.guardrails absent → the CRD default, [] → none. */
export type CompiledGuardrails = ReadonlyMap<string, GuardrailAction>;

export function compileGuardrails(
  guardrails: readonly Guardrail[] | undefined,
  problems: string[],
): CompiledGuardrails {
  const list: readonly Readonly<Guardrail>[] = guardrails ?? DEFAULT_GUARDRAILS;
  const out = new Map<string, GuardrailAction>();
  if (!Array.isArray(list)) {
    problems.push('spec.guardrails is not a list');
    return out;
  }
  for (const [i, g] of list.entries()) {
    const detector: string = g?.detector;
    if (!Object.hasOwn(GUARDRAIL_PROTOCOLS, detector)) {
      problems.push(`guardrails[${i}] has unknown detector ${JSON.stringify(detector)}`);
      continue;
    }
    const action: GuardrailAction = g.action;
    if (action !== 'approve' && action !== 'deny') {
      problems.push(
        `guardrails[${i}] (${detector}) has action ${JSON.stringify(g.action)}; use approve or deny`,
      );
      continue;
    }
    // Two entries for one detector (the API server refuses that): keep the stricter.
    const prev = out.get(detector);
    if (!prev || SEVERITY[action] > SEVERITY[prev]) out.set(detector, action);
  }
  return out;
}

export interface GuardrailHit {
  detector: string;
  action: GuardrailAction;
  risk: Risk;
}

/**
 * The most severe guardrail the operation's risks trigger (first such risk on ties), or undefined.
 * A guardrail only counts when it is more severe than `current`: guardrails never relax a decision.
 */
export function strongestGuardrail(
  guardrails: CompiledGuardrails,
  type: OperationType,
  risks: readonly Risk[] | undefined,
  current: PolicyAction,
): GuardrailHit | undefined {
  if (guardrails.size === 0 || !Array.isArray(risks)) return undefined;
  let best: GuardrailHit | undefined;
  for (const risk of risks) {
    const detector = risk?.detector;
    if (typeof detector !== 'string') continue;
    const action = guardrails.get(detector);
    if (!action || GUARDRAIL_PROTOCOLS[detector as GuardrailDetector] !== type) continue;
    if (SEVERITY[action] <= SEVERITY[best?.action ?? current]) continue;
    best = { detector, action, risk };
  }
  return best;
}
