// `make adversarial`: the adversarial masking corpus, each attack directly and through the sidecar
// under the read-only and the permissive policy. Prints one line per run and a summary.
import { describeOutcome, runCorpus, startAdversarialEnvironment } from '@chaperone/testkit';

const env = await startAdversarialEnvironment();
try {
  const filter = process.env.ONLY;
  const { ATTACKS } = await import('@chaperone/testkit');
  const attacks = filter ? ATTACKS.filter((a) => a.id.includes(filter) || a.class === filter) : ATTACKS;
  const outcomes = await runCorpus(env, attacks, (o) => console.log(describeOutcome(o)));
  const useless = outcomes.filter((o) => o.policy === 'direct' && !o.hit).length;
  const leaks = (p: string) => outcomes.filter((o) => o.policy === p && o.hit).length;
  console.log(
    `\n${attacks.length} attacks: ${useless} reveal nothing directly; leaks through the sidecar: reads ${leaks('reads')}, permissive ${leaks('permissive')}`,
  );
  process.exitCode = useless || leaks('reads') || leaks('permissive') ? 1 : 0;
} finally {
  await env.stop();
}
