import { describe, expect, it } from 'vitest';
import { compileRules, parseMaskedColumn, rulesForTable } from './masking-rules.js';

describe('parseMaskedColumn', () => {
  it.each([
    ['public.customers.ssn', { schema: 'public', table: 'customers', column: 'ssn' }],
    ['public.*.ssn', { schema: 'public', table: '*', column: 'ssn' }],
    ['"My.Schema".t.c', { schema: 'My.Schema', table: 't', column: 'c' }],
    ['s."a""b".c', { schema: 's', table: 'a"b', column: 'c' }],
  ])('%s', (spec, rule) => {
    expect(parseMaskedColumn(spec)).toEqual(rule);
  });
  it.each(['customers.ssn', 'a.b.c.d', 'a..c', ''])('refuses %j', (spec) => {
    expect(parseMaskedColumn(spec)).toBeUndefined();
  });
});

describe('rulesForTable', () => {
  const rules = compileRules([
    { schema: 'public', table: 'customers', column: 'ssn' },
    { schema: 'sales', table: 'cust?mers', column: 'email' },
    { schema: '*', table: 'cards', column: '*' },
  ]);
  const columns = (schema: string | undefined, name: string, defaults: string[]) =>
    rulesForTable(rules, schema, name, defaults).rules.map(({ rule, schema: s }) => `${s}:${rule.text}`);

  it('matches a qualified table by its schema', () => {
    expect(columns('public', 'customers', ['public'])).toEqual(['public:public.customers.ssn']);
    expect(columns('sales', 'customers', ['public'])).toEqual(['sales:sales.cust?mers.email']);
    expect(columns('SALES', 'CUSTOMERS', ['public'])).toEqual(['SALES:sales.cust?mers.email']);
  });
  it('resolves an unqualified table through the default schemas', () => {
    expect(columns(undefined, 'customers', ['public'])).toEqual(['public:public.customers.ssn']);
    expect(columns(undefined, 'customers', ['sales', 'public'])).toEqual([
      'public:public.customers.ssn',
      'sales:sales.cust?mers.email',
    ]);
    expect(columns(undefined, 'customers', ['*'])).toEqual([
      'public:public.customers.ssn',
      'sales:sales.cust?mers.email',
    ]);
    expect(columns(undefined, 'cards', ['x'])).toEqual(['x:*.cards.*']);
  });
  it('compiles a rules array once', () => {
    const list = [{ schema: 'a', table: 'b', column: 'c' }];
    expect(compileRules(list)).toBe(compileRules(list));
  });
});
