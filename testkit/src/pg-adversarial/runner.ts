// The differential runner: each attack straight to PostgreSQL (it must reveal a secret, or the
// attack proves nothing) and through the gateway under each policy (no secret may arrive).
import { ATTACKS, type Attack, SECRETS } from './corpus.js';
import type { AdversarialEnvironment, PolicyName } from './environment.js';
import { type SecretHit, secretScanner } from './scanner.js';
import { runSession, type SessionCapture } from './session.js';

export interface AttackOutcome {
  attack: Attack;
  policy: PolicyName | 'direct';
  hit?: SecretHit;
  capture: SessionCapture;
}

const scan = secretScanner(SECRETS);

async function once(
  env: AdversarialEnvironment,
  attack: Attack,
  policy: PolicyName | 'direct',
): Promise<AttackOutcome> {
  await env.reset();
  if (attack.setup) await env.asOwner(attack.setup);
  const endpoint = policy === 'direct' ? env.direct : env.sidecars[policy];
  const capture = await runSession(endpoint, attack.steps);
  const hit = scan(capture.output);
  return { attack, policy, capture, ...(hit ? { hit } : {}) };
}

/** Runs one attack directly and through each policy's gateway. */
export async function runAttack(
  env: AdversarialEnvironment,
  attack: Attack,
  policies: readonly PolicyName[] = ['reads', 'permissive'],
): Promise<AttackOutcome[]> {
  const out = [await once(env, attack, 'direct')];
  for (const p of policies) out.push(await once(env, attack, p));
  return out;
}

export async function runCorpus(
  env: AdversarialEnvironment,
  attacks: readonly Attack[] = ATTACKS,
  onOutcome?: (o: AttackOutcome) => void,
): Promise<AttackOutcome[]> {
  const all: AttackOutcome[] = [];
  for (const attack of attacks) {
    for (const o of await runAttack(env, attack)) {
      onOutcome?.(o);
      all.push(o);
    }
  }
  return all;
}

/** One line per outcome, for reports: `id policy LEAK(encoding)|ok|useless (why)`. */
export function describeOutcome(o: AttackOutcome): string {
  const verdict =
    o.policy === 'direct'
      ? o.hit
        ? `reveals (${o.hit.encoding})`
        : `USELESS: reveals nothing directly${o.capture.errors[0] ? ` (${o.capture.errors[0]})` : ''}`
      : o.hit
        ? `LEAK (${o.hit.encoding})`
        : `safe${o.capture.errors[0] ? ` — ${o.capture.errors[0].slice(0, 120)}` : ''}`;
  return `${o.attack.class}/${o.attack.id} [${o.policy}] ${verdict}`;
}
