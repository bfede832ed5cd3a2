import type { Guardrail } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { DEFAULT_GUARDRAILS } from './defaults.js';
import { compileGuardrails, strongestGuardrail } from './guardrails.js';
import { risk } from './test-fixtures.js';

function compiled(list: Guardrail[] | undefined) {
  const problems: string[] = [];
  const g = compileGuardrails(list, problems);
  expect(problems).toEqual([]);
  return g;
}

describe('compileGuardrails', () => {
  it('absent → the CRD default list', () => {
    const g = compiled(undefined);
    expect(g.size).toBe(DEFAULT_GUARDRAILS.length);
    expect(g.get('delete-without-where')).toBe('approve');
    expect(g.get('set-role')).toBe('deny');
    expect(g.has('unbounded-select')).toBe(false);
  });
  it('[] turns guardrails off', () => {
    expect(compiled([]).size).toBe(0);
  });
  it('a list replaces the default', () => {
    const g = compiled([{ detector: 'rm-rf', action: 'deny' }]);
    expect([...g]).toEqual([['rm-rf', 'deny']]);
  });
  it('duplicate entries keep the stricter action', () => {
    const g = compiled([
      { detector: 'drop', action: 'deny' },
      { detector: 'drop', action: 'approve' },
    ]);
    expect(g.get('drop')).toBe('deny');
  });
  it('reports unknown detectors and actions', () => {
    const problems: string[] = [];
    compileGuardrails(
      [
        { detector: 'delete-without-wher' as 'drop', action: 'deny' },
        { detector: 'drop', action: 'warn' as 'deny' },
      ],
      problems,
    );
    expect(problems).toEqual([
      'guardrails[0] has unknown detector "delete-without-wher"',
      'guardrails[1] (drop) has action "warn"; use approve or deny',
    ]);
  });
});

describe('strongestGuardrail', () => {
  const g = compiled([
    { detector: 'delete-without-where', action: 'approve' },
    { detector: 'file-access', action: 'deny' },
    { detector: 'truncate', action: 'approve' },
    { detector: 'rm-rf', action: 'deny' },
    { detector: 'exec', action: 'approve' },
  ]);
  it.each([
    ['allow + approve guardrail → approve', 'allow', [risk('delete-without-where')], 'approve'],
    ['allow + deny guardrail → deny', 'allow', [risk('file-access')], 'deny'],
    ['approve + deny guardrail → deny', 'approve', [risk('file-access')], 'deny'],
    ['approve + approve guardrail → no change', 'approve', [risk('delete-without-where')], undefined],
    ['deny + anything → no change', 'deny', [risk('file-access')], undefined],
    ['risk without guardrail → no change', 'allow', [risk('unbounded-select')], undefined],
    ['unknown risk → no change', 'allow', [risk('made-up')], undefined],
    ['no risks', 'allow', [], undefined],
    ['deny wins over approve, whatever the order', 'allow', [risk('truncate'), risk('file-access')], 'deny'],
    ["another protocol's detector does not apply", 'allow', [risk('rm-rf')], undefined],
    ["kubernetes 'exec' does not apply to postgres", 'allow', [risk('exec')], undefined],
  ] as const)('%s', (_, current, risks, expected) => {
    expect(strongestGuardrail(g, 'postgres', risks, current)?.action).toBe(expected);
  });

  it('on ties the first risk decides', () => {
    const hit = strongestGuardrail(
      g,
      'postgres',
      [risk('truncate', 'first'), risk('delete-without-where', 'second')],
      'allow',
    );
    expect(hit).toEqual({ detector: 'truncate', action: 'approve', risk: risk('truncate', 'first') });
  });
  it('ssh detectors apply to ssh operations', () => {
    expect(strongestGuardrail(g, 'ssh', [risk('rm-rf')], 'allow')?.action).toBe('deny');
  });
  it('tolerates malformed risks', () => {
    expect(strongestGuardrail(g, 'postgres', [null, { detector: 7 }] as never, 'allow')).toBeUndefined();
    expect(strongestGuardrail(g, 'postgres', undefined, 'allow')).toBeUndefined();
  });
});
