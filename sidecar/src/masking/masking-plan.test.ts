import type { AccessPolicy, MaskingSpec } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { policy } from '../policy/test-fixtures.js';
import { compileMasking, type MaskingPlan } from './masking-plan.js';
import { MAX_SCAN_CHARS } from './value-detectors.js';

const withMasking = (name: string, masking: MaskingSpec): AccessPolicy => policy(name, { masking });

function plan(...policies: AccessPolicy[]): MaskingPlan {
  const r = compileMasking(policies);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.plan;
}

describe('column rules', () => {
  const p = plan(
    withMasking('a', {
      columns: [
        { column: 'public.customers.email', strategy: 'partial' },
        { column: 'public.customers.ssn' }, // default redact
        { column: 'public.*.ssn', strategy: 'hash' },
        { column: '*.*.password', strategy: 'null' },
        { column: 'hr.employees.*', strategy: 'hash' },
        { column: 'hr.employees.salary', strategy: 'redact' },
        { column: 'public.t?.secret', strategy: 'partial' },
      ],
    }),
  );
  it.each([
    ['public', 'customers', 'email', 'partial'],
    ['public', 'customers', 'ssn', 'redact'], // redact (exact) beats hash (glob)
    ['public', 'patients', 'ssn', 'hash'],
    ['billing', 'patients', 'ssn', undefined], // '*' is one segment: schema must be public
    ['auth', 'users', 'password', 'null'],
    ['hr', 'employees', 'name', 'hash'],
    ['hr', 'employees', 'salary', 'redact'], // redact > hash
    ['public', 't1', 'secret', 'partial'],
    ['public', 't12', 'secret', undefined],
    ['public', 'customers', 'name', undefined],
    ['PUBLIC', 'Customers', 'Email', 'partial'], // case-insensitive: masking fails closed
    ['public', 'customers', 'email2', undefined],
  ])('%s.%s.%s → %s', (schema, table, column, expected) => {
    expect(p.strategyForColumn(schema, table, column)).toBe(expected);
    expect(p.strategyForColumn(schema, table, column)).toBe(expected); // cached answer is the same
  });

  it('the strongest wins: null > redact > hash > partial, whatever the order of the rules', () => {
    const globs = ['s.t.c', 's.*.c', 's.t.*', '*.t.c']; // all four name s.t.c
    const strategies = ['partial', 'hash', 'redact', 'null'] as const;
    for (let shift = 0; shift < 4; shift++) {
      for (let n = 1; n <= 4; n++) {
        const used = strategies.slice(0, n); // the n weakest
        const columns = used.map((strategy, i) => ({ column: globs[(i + shift) % 4] ?? '', strategy }));
        expect(plan(withMasking('a', { columns })).strategyForColumn('s', 't', 'c')).toBe(used[n - 1]);
        expect(plan(withMasking('a', { columns: columns.reverse() })).strategyForColumn('s', 't', 'c')).toBe(
          used[n - 1],
        );
      }
    }
  });

  it('is the union of all policies, strongest across them', () => {
    const q = plan(
      withMasking('a', { columns: [{ column: 'public.customers.email', strategy: 'partial' }] }),
      withMasking('b', {
        columns: [
          { column: 'public.customers.email', strategy: 'hash' },
          { column: 'public.customers.phone' },
        ],
      }),
      withMasking('c', {}),
      policy('d', {}),
    );
    expect(q.strategyForColumn('public', 'customers', 'email')).toBe('hash');
    expect(q.strategyForColumn('public', 'customers', 'phone')).toBe('redact');
    expect(q.columnRules).toEqual([
      { schema: 'public', table: 'customers', column: 'email', strategy: 'hash' },
      { schema: 'public', table: 'customers', column: 'phone', strategy: 'redact' },
    ]);
  });

  it("columnRules keep '*' segments for the SQL leak analyser", () => {
    expect(plan(withMasking('a', { columns: [{ column: 'public.*.ssn' }] })).columnRules).toEqual([
      { schema: 'public', table: '*', column: 'ssn', strategy: 'redact' },
    ]);
  });

  it('flags', () => {
    expect(plan(withMasking('a', { columns: [{ column: 'a.b.c' }] }))).toMatchObject({
      hasColumnRules: true,
      hasDetectors: false,
    });
    expect(plan(withMasking('a', { detectors: [{ type: 'email' }] }))).toMatchObject({
      hasColumnRules: false,
      hasDetectors: true,
    });
    expect(plan(policy('a', {}))).toMatchObject({
      hasColumnRules: false,
      hasDetectors: false,
      columnRules: [],
    });
  });
});

describe('value detectors', () => {
  it('detect() returns the strongest strategy among matching detectors', () => {
    const p = plan(
      withMasking('a', {
        detectors: [
          { type: 'email', strategy: 'partial' },
          { type: 'credit-card', strategy: 'null' },
          { type: 'custom', name: 'order-id', pattern: 'ORD-\\d{6}', strategy: 'hash' },
        ],
      }),
    );
    expect(p.detect('mail alice@example.com')).toBe('partial');
    expect(p.detect('card 4111 1111 1111 1111 for alice@example.com')).toBe('null');
    expect(p.detect('ORD-123456 for alice@example.com')).toBe('hash');
    expect(p.match('ORD-123456')).toEqual({ detector: 'order-id', strategy: 'hash' });
    expect(p.detect('nothing to see')).toBeUndefined();
    expect(p.detect('')).toBeUndefined();
    expect(p.detectors.map((d) => d.strategy)).toEqual(['null', 'hash', 'partial']);
  });

  it('default strategy is redact', () => {
    expect(
      plan(withMasking('a', { detectors: [{ type: 'jwt' }] })).detect('eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.'),
    ).toBe('redact');
  });

  it('is the union of all policies; the same detector in two policies takes the stronger strategy', () => {
    const p = plan(
      withMasking('a', { detectors: [{ type: 'email', strategy: 'partial' }] }),
      withMasking('b', { detectors: [{ type: 'email', strategy: 'hash' }, { type: 'private-key' }] }),
    );
    expect(p.detect('alice@example.com')).toBe('hash');
    expect(p.detect('-----BEGIN PRIVATE KEY-----')).toBe('redact');
    expect(p.detectors).toHaveLength(2);
  });

  it(`scans only the first ${MAX_SCAN_CHARS} characters`, () => {
    const p = plan(withMasking('a', { detectors: [{ type: 'email' }] }));
    const pad = (n: number) => ' '.repeat(n);
    expect(p.detect(`${pad(MAX_SCAN_CHARS - 40)} alice@example.com`)).toBe('redact');
    expect(p.detect(`${pad(MAX_SCAN_CHARS)} alice@example.com`)).toBeUndefined();
  });

  it('every built-in type is wired to its detector', () => {
    const p = plan(
      withMasking('a', {
        detectors: [
          { type: 'email', strategy: 'partial' },
          { type: 'credit-card', strategy: 'partial' },
          { type: 'national-id', strategy: 'partial' },
          { type: 'jwt', strategy: 'partial' },
          { type: 'cloud-key', strategy: 'partial' },
          { type: 'private-key', strategy: 'partial' },
        ],
      }),
    );
    expect(p.match('a@b.io')?.detector).toBe('email');
    expect(p.match('4111111111111111')?.detector).toBe('credit-card');
    expect(p.match('123-45-6789')?.detector).toBe('national-id');
    expect(p.match('eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.')?.detector).toBe('jwt');
    expect(p.match('AKIAIOSFODNN7EXAMPLE')?.detector).toBe('cloud-key');
    expect(p.match('-----BEGIN EC PRIVATE KEY-----')?.detector).toBe('private-key');
  });
});

describe('leakage and kubernetes secret data', () => {
  it.each([
    [[], 'deny', 'redact'],
    [[policy('a', {})], 'deny', 'redact'], // CRD defaults
    [[withMasking('a', { leakage: 'approve', kubernetes: { secretData: 'allow' } })], 'approve', 'allow'],
    [
      [
        withMasking('a', { leakage: 'approve', kubernetes: { secretData: 'allow' } }),
        withMasking('b', { leakage: 'deny' }),
      ],
      'deny',
      'redact',
    ],
    [
      [
        withMasking('a', { leakage: 'approve', kubernetes: { secretData: 'allow' } }),
        withMasking('b', { leakage: 'approve' }),
      ],
      'approve',
      'redact', // b's secretData defaults to redact
    ],
    [
      [withMasking('a', { leakage: 'maybe' as 'deny', kubernetes: { secretData: 'sure' as 'allow' } })],
      'deny',
      'redact',
    ],
  ] as const)('%#: leakage %s, secretData %s', (policies, leakage, secretData) => {
    expect(plan(...policies)).toMatchObject({ leakage, kubernetesSecretData: secretData });
  });
});

describe('errors are reported by compileMasking, never thrown at match time', () => {
  it.each<[string, MaskingSpec, RegExp]>([
    [
      'invalid custom regex',
      { detectors: [{ type: 'custom', name: 'bad', pattern: '(unclosed' }] },
      /masking.detectors\[0\] \(bad\): pattern is not a valid regular expression/,
    ],
    ['lookaround', { detectors: [{ type: 'custom', name: 'la', pattern: 'a(?=b)' }] }, /lookaround/],
    ['custom without pattern', { detectors: [{ type: 'custom', name: 'empty' }] }, /pattern is missing/],
    ['custom without name', { detectors: [{ type: 'custom', pattern: 'x' }] }, /needs a name/],
    ['unknown detector type', { detectors: [{ type: 'iban' as 'email' }] }, /unknown detector type "iban"/],
    [
      'unknown strategy',
      { detectors: [{ type: 'email', strategy: 'shuffle' as 'hash' }] },
      /unknown strategy "shuffle"/,
    ],
    ['column with two segments', { columns: [{ column: 'customers.email' }] }, /not 'schema.table.column'/],
    ['column with an empty segment', { columns: [{ column: 'public..email' }] }, /not 'schema.table.column'/],
    [
      'column strategy',
      { columns: [{ column: 'a.b.c', strategy: 'blur' as 'hash' }] },
      /unknown strategy "blur"/,
    ],
  ])('%s', (_, masking, message) => {
    const r = compileMasking([policy('good', {}), withMasking('orders-agents', masking)]);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.errors.join('\n')).toMatch(/^AccessPolicy orders-agents: /);
    expect(!r.ok && r.errors.join('\n')).toMatch(message);
  });
  it('collects every error, not just the first', () => {
    const r = compileMasking([
      withMasking('a', {
        detectors: [{ type: 'custom', name: 'x', pattern: '(' }],
        columns: [{ column: 'bad' }],
      }),
    ]);
    expect(!r.ok && r.errors).toHaveLength(2);
  });
});
