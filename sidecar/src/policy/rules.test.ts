import type { PolicyRule } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { compileRule, prepareOperation, splitHostPort } from './rules.js';
import { kube, pg, sshExec, sshForward } from './test-fixtures.js';
import type { Operation } from './types.js';

function matches(rule: PolicyRule, op: Operation): boolean {
  const problems: string[] = [];
  const compiled = compileRule(rule, 0, problems);
  expect(problems).toEqual([]);
  return compiled.matches(prepareOperation(op));
}

const allow = (extra: Partial<PolicyRule>): PolicyRule => ({ name: 'r', action: 'allow', ...extra });
const approve = (extra: Partial<PolicyRule>): PolicyRule => ({ name: 'r', action: 'approve', ...extra });
const deny = (extra: Partial<PolicyRule>): PolicyRule => ({ name: 'r', action: 'deny', ...extra });

describe('rules without a protocol block', () => {
  it.each<Operation>([
    pg(['read'], ['public.orders']),
    pg(['write', 'ddl'], []),
    sshExec('anything'),
    sshForward('db:5432'),
    { type: 'ssh', operation: 'shell', risks: [] },
    kube('delete', 'namespaces', { name: 'prod' }),
  ])('match every operation: %j', (op) => {
    expect(matches(allow({}), op)).toBe(true);
    expect(matches(deny({}), op)).toBe(true);
  });
});

describe('protocol blocks only match their protocol', () => {
  it.each<[string, PolicyRule, Operation]>([
    ['postgres rule vs ssh', allow({ postgres: {} }), sshExec('ls')],
    ['postgres rule vs kubernetes', allow({ postgres: {} }), kube('get', 'pods')],
    ['ssh rule vs postgres', allow({ ssh: {} }), pg(['read'])],
    ['kubernetes rule vs postgres', allow({ kubernetes: {} }), pg(['read'])],
    ['kubernetes rule vs ssh', deny({ kubernetes: {} }), sshExec('ls')],
  ])('%s', (_, rule, op) => {
    expect(matches(rule, op)).toBe(false);
  });

  it('an empty block matches every operation of its protocol', () => {
    expect(matches(allow({ postgres: {} }), pg(['admin'], ['pg_catalog.pg_roles']))).toBe(true);
    expect(matches(allow({ ssh: {} }), sshForward('x:1'))).toBe(true);
    expect(matches(allow({ kubernetes: {} }), kube('deletecollection', 'secrets', { namespace: 'x' }))).toBe(
      true,
    );
  });
});

describe('postgres operations', () => {
  it.each<[string, PolicyRule, Operation, boolean]>([
    ['allow read vs read', allow({ postgres: { operations: ['read'] } }), pg(['read']), true],
    ['allow read vs write', allow({ postgres: { operations: ['read'] } }), pg(['write']), false],
    [
      'allow read vs read+write: every class must be covered',
      allow({ postgres: { operations: ['read'] } }),
      pg(['read', 'write']),
      false,
    ],
    [
      'allow read,write vs read+write',
      allow({ postgres: { operations: ['read', 'write'] } }),
      pg(['read', 'write']),
      true,
    ],
    [
      'approve write vs read+write',
      approve({ postgres: { operations: ['write'] } }),
      pg(['read', 'write']),
      false,
    ],
    [
      'allow read vs read+session: session ignored',
      allow({ postgres: { operations: ['read'] } }),
      pg(['read', 'session']),
      true,
    ],
    ['allow [] (empty = any) vs ddl', allow({ postgres: { operations: [] } }), pg(['ddl']), true],
    ['deny ddl vs ddl', deny({ postgres: { operations: ['ddl'] } }), pg(['ddl']), true],
    [
      'deny ddl vs ddl+read: any class suffices',
      deny({ postgres: { operations: ['ddl'] } }),
      pg(['ddl', 'read']),
      true,
    ],
    ['deny ddl vs read', deny({ postgres: { operations: ['ddl'] } }), pg(['read']), false],
    ['deny copy vs copy+read', deny({ postgres: { operations: ['copy'] } }), pg(['read', 'copy']), true],
  ])('%s → %s', (_, rule, op, expected) => {
    expect(matches(rule, op)).toBe(expected);
  });
});

describe('postgres tables', () => {
  const orders = { tables: ['public.orders', 'public.order_items'] };
  const billing = { tables: ['billing.*'] };
  const anyCustomers = { tables: ['*.customers'] };
  it.each<[string, PolicyRule, Operation, boolean]>([
    ['allow exact table', allow({ postgres: orders }), pg(['write'], ['public.orders']), true],
    [
      'allow every table in scope',
      allow({ postgres: orders }),
      pg(['write'], ['public.orders', 'public.order_items']),
      true,
    ],
    [
      'allow: an out-of-scope table must not ride along',
      allow({ postgres: orders }),
      pg(['write'], ['public.orders', 'public.customers']),
      false,
    ],
    [
      'approve: same every-semantics',
      approve({ postgres: orders }),
      pg(['write'], ['public.orders', 'public.customers']),
      false,
    ],
    ['allow: no tables touched matches vacuously', allow({ postgres: orders }), pg(['read'], []), true],
    [
      'allow schema glob',
      allow({ postgres: billing }),
      pg(['read'], ['billing.invoices', 'billing.payments']),
      true,
    ],
    [
      'allow schema glob, other schema',
      allow({ postgres: billing }),
      pg(['read'], ['public.invoices']),
      false,
    ],
    [
      'allow table glob',
      allow({ postgres: anyCustomers }),
      pg(['read'], ['eu.customers', 'us.customers']),
      true,
    ],
    [
      'allow table glob, other table',
      allow({ postgres: anyCustomers }),
      pg(['read'], ['eu.customers_old']),
      false,
    ],
    ['allow ? glob', allow({ postgres: { tables: ['public.t?'] } }), pg(['read'], ['public.t1']), true],
    [
      'allow ? glob needs exactly one char',
      allow({ postgres: { tables: ['public.t?'] } }),
      pg(['read'], ['public.t12']),
      false,
    ],
    [
      "'*' stays in its segment",
      allow({ postgres: { tables: ['public*.orders'] } }),
      pg(['read'], ['public.x.orders']),
      false,
    ],
    ['allow is case-sensitive', allow({ postgres: orders }), pg(['read'], ['public.Orders']), false],
    [
      'allow: unqualified table only matches *.x',
      allow({ postgres: orders }),
      pg(['read'], ['orders']),
      false,
    ],
    [
      'allow: unqualified table matches *.orders',
      allow({ postgres: { tables: ['*.orders'] } }),
      pg(['read'], ['orders']),
      true,
    ],
    [
      'deny: any matching table suffices',
      deny({ postgres: billing }),
      pg(['read'], ['public.orders', 'billing.cards']),
      true,
    ],
    ['deny: no matching table', deny({ postgres: billing }), pg(['read'], ['public.orders']), false],
    ['deny: no tables never matches', deny({ postgres: billing }), pg(['read'], []), false],
    ['deny ignores case', deny({ postgres: orders }), pg(['read'], ['Public.ORDERS']), true],
    [
      'deny: unqualified table could be in any schema',
      deny({ postgres: orders }),
      pg(['read'], ['orders']),
      true,
    ],
    [
      'deny: operations and tables both required',
      deny({ postgres: { operations: ['write'], ...billing } }),
      pg(['read'], ['billing.x']),
      false,
    ],
    [
      'deny: operations and tables both hit',
      deny({ postgres: { operations: ['write'], ...billing } }),
      pg(['read', 'write'], ['public.a', 'billing.x']),
      true,
    ],
    [
      'allow: operations ok, tables not',
      allow({ postgres: { operations: ['read'], ...orders } }),
      pg(['read'], ['public.x']),
      false,
    ],
    [
      'allow: tables ok, operations not',
      allow({ postgres: { operations: ['read'], ...orders } }),
      pg(['write'], ['public.orders']),
      false,
    ],
    [
      'allow: a table name with a dot in the table part',
      allow({ postgres: { tables: ['public.*'] } }),
      pg(['read'], ['public.we.ird']),
      true,
    ],
  ])('%s → %s', (_, rule, op, expected) => {
    expect(matches(rule, op)).toBe(expected);
  });
});

describe('ssh', () => {
  const status = { operations: ['exec' as const], commands: ['systemctl status *', 'df -h'] };
  it.each<[string, PolicyRule, Operation, boolean]>([
    ['operations: exec', allow({ ssh: { operations: ['exec'] } }), sshExec('ls'), true],
    [
      'operations: exec vs shell',
      allow({ ssh: { operations: ['exec'] } }),
      { type: 'ssh', operation: 'shell', risks: [] },
      false,
    ],
    [
      'operations: shell',
      allow({ ssh: { operations: ['shell'] } }),
      { type: 'ssh', operation: 'shell', risks: [] },
      true,
    ],
    [
      'operations: sftp',
      allow({ ssh: { operations: ['sftp', 'shell'] } }),
      { type: 'ssh', operation: 'sftp', risks: [] },
      true,
    ],
    ['command glob', allow({ ssh: status }), sshExec('systemctl status nginx'), true],
    ['exact command', allow({ ssh: status }), sshExec('df -h'), true],
    ['command glob is anchored', allow({ ssh: status }), sshExec('sudo df -h'), false],
    [
      'command glob vs chained command',
      allow({ ssh: status }),
      sshExec('systemctl status x; cat /etc/shadow'),
      false,
    ],
    [
      'commands only match exec',
      allow({ ssh: { commands: ['*'] } }),
      { type: 'ssh', operation: 'shell', risks: [] },
      false,
    ],
    [
      'commands vs exec without a command',
      allow({ ssh: { commands: ['*'] } }),
      { type: 'ssh', operation: 'exec', risks: [] },
      false,
    ],
    [
      'deny glob hits a later simple command',
      deny({ ssh: { commands: ['rm *'] } }),
      sshExec('ls; rm -rf /tmp/x'),
      true,
    ],
    [
      'deny glob hits the whole line',
      deny({ ssh: { commands: ['*shadow*'] } }),
      sshExec('cat /etc/shadow'),
      true,
    ],
    ['deny glob misses', deny({ ssh: { commands: ['rm *'] } }), sshExec('ls -la'), false],
    [
      'forward target exact',
      allow({ ssh: { forwardTargets: ['db.internal:5432'] } }),
      sshForward('db.internal:5432'),
      true,
    ],
    [
      'forward target other port',
      allow({ ssh: { forwardTargets: ['db.internal:5432'] } }),
      sshForward('db.internal:5433'),
      false,
    ],
    [
      'forward target any port',
      allow({ ssh: { forwardTargets: ['db.internal:*'] } }),
      sshForward('db.internal:22'),
      true,
    ],
    [
      'forward target host glob',
      allow({ ssh: { forwardTargets: ['10.0.0.*:443'] } }),
      sshForward('10.0.0.9:443'),
      true,
    ],
    [
      'forward target host glob stays in one label',
      allow({ ssh: { forwardTargets: ['10.0.0.*:443'] } }),
      sshForward('10.0.0.9.evil.example:443'),
      false,
    ],
    ['forward target *:*', allow({ ssh: { forwardTargets: ['*:*'] } }), sshForward('[::1]:22'), true],
    [
      'forward target host is case-insensitive',
      allow({ ssh: { forwardTargets: ['db.internal:5432'] } }),
      sshForward('DB.Internal:5432'),
      true,
    ],
    [
      'forward target port with leading zero',
      allow({ ssh: { forwardTargets: ['db:22'] } }),
      sshForward('db:022'),
      true,
    ],
    [
      'forward target non-numeric port',
      allow({ ssh: { forwardTargets: ['db:22'] } }),
      sshForward('db:ssh'),
      false,
    ],
    [
      'forwardTargets only match port-forward',
      allow({ ssh: { forwardTargets: ['*:*'] } }),
      sshExec('ls'),
      false,
    ],
    [
      'forwardTargets vs port-forward without target',
      allow({ ssh: { forwardTargets: ['*:*'] } }),
      { type: 'ssh', operation: 'port-forward', risks: [] },
      false,
    ],
    [
      'deny forward host glob is broad',
      deny({ ssh: { forwardTargets: ['*.internal:*'] } }),
      sshForward('a.b.internal:1'),
      true,
    ],
  ])('%s → %s', (_, rule, op, expected) => {
    expect(matches(rule, op)).toBe(expected);
  });

  it('splitHostPort', () => {
    expect(splitHostPort('db.internal:5432')).toEqual({ host: 'db.internal', port: '5432' });
    expect(splitHostPort('[::1]:22')).toEqual({ host: '::1', port: '22' });
    expect(splitHostPort('nohost')).toEqual({ host: 'nohost', port: '' });
  });
});

describe('kubernetes', () => {
  const read = {
    verbs: ['get', 'list', 'watch'],
    apiGroups: ['', 'apps'],
    resources: ['pods', 'deployments'],
    namespaces: ['shop'],
  };
  it.each<[string, PolicyRule, Operation, boolean]>([
    [
      'all filters match',
      allow({ kubernetes: read }),
      kube('get', 'pods', { namespace: 'shop', name: 'web-1' }),
      true,
    ],
    ['verb not listed', allow({ kubernetes: read }), kube('delete', 'pods', { namespace: 'shop' }), false],
    [
      'apiGroup not listed',
      allow({ kubernetes: read }),
      kube('get', 'jobs', { apiGroup: 'batch', namespace: 'shop' }),
      false,
    ],
    [
      'apps group',
      allow({ kubernetes: read }),
      kube('list', 'deployments', { apiGroup: 'apps', namespace: 'shop' }),
      true,
    ],
    [
      'resource not listed',
      allow({ kubernetes: read }),
      kube('get', 'secrets', { namespace: 'shop' }),
      false,
    ],
    [
      'pods does not cover pods/exec',
      allow({ kubernetes: read }),
      kube('get', 'pods', { subresource: 'exec', namespace: 'shop' }),
      false,
    ],
    [
      'pods/exec listed',
      allow({ kubernetes: { resources: ['pods/exec'] } }),
      kube('create', 'pods', { subresource: 'exec', namespace: 'shop' }),
      true,
    ],
    [
      'pods/* covers subresources',
      allow({ kubernetes: { resources: ['pods/*'] } }),
      kube('get', 'pods', { subresource: 'log', namespace: 'shop' }),
      true,
    ],
    [
      'pods/* does not cover pods',
      allow({ kubernetes: { resources: ['pods/*'] } }),
      kube('get', 'pods', { namespace: 'shop' }),
      false,
    ],
    [
      '*/scale',
      allow({ kubernetes: { resources: ['*/scale'] } }),
      kube('update', 'deployments', { subresource: 'scale', apiGroup: 'apps' }),
      true,
    ],
    [
      '*/scale vs status',
      allow({ kubernetes: { resources: ['*/scale'] } }),
      kube('update', 'deployments', { subresource: 'status' }),
      false,
    ],
    [
      "'*' covers everything",
      allow({ kubernetes: { resources: ['*'] } }),
      kube('create', 'pods', { subresource: 'exec' }),
      true,
    ],
    ["verbs '*'", allow({ kubernetes: { verbs: ['*'] } }), kube('deletecollection', 'pods'), true],
    [
      "apiGroups '*'",
      allow({ kubernetes: { apiGroups: ['*'] } }),
      kube('get', 'x', { apiGroup: 'example.com' }),
      true,
    ],
    ["core group ''", allow({ kubernetes: { apiGroups: [''] } }), kube('get', 'pods'), true],
    [
      "core group '' vs apps",
      allow({ kubernetes: { apiGroups: [''] } }),
      kube('get', 'deployments', { apiGroup: 'apps' }),
      false,
    ],
    [
      'namespace not listed',
      allow({ kubernetes: read }),
      kube('get', 'pods', { namespace: 'billing' }),
      false,
    ],
    [
      'namespaces set: cluster-scoped never matches',
      allow({ kubernetes: { namespaces: ['*'] } }),
      kube('get', 'nodes'),
      false,
    ],
    [
      "namespaces '*' matches any namespace",
      allow({ kubernetes: { namespaces: ['*'] } }),
      kube('get', 'pods', { namespace: 'x' }),
      true,
    ],
    [
      'no namespaces: cluster-scoped matches',
      allow({ kubernetes: { verbs: ['get'] } }),
      kube('get', 'nodes'),
      true,
    ],
    [
      'resourceNames',
      allow({ kubernetes: { resourceNames: ['web'] } }),
      kube('get', 'deployments', { name: 'web' }),
      true,
    ],
    [
      'resourceNames other name',
      allow({ kubernetes: { resourceNames: ['web'] } }),
      kube('get', 'deployments', { name: 'api' }),
      false,
    ],
    [
      'resourceNames vs list (no name)',
      allow({ kubernetes: { resourceNames: ['web'] } }),
      kube('list', 'deployments'),
      false,
    ],
  ])('%s → %s', (_, rule, op, expected) => {
    expect(matches(rule, op)).toBe(expected);
  });
});

describe('compileRule problems', () => {
  it.each<[string, PolicyRule, RegExp]>([
    ['unknown action', { name: 'r', action: 'permit' as 'allow' }, /action "permit"/],
    ['no name', { action: 'allow' } as PolicyRule, /no name/],
    [
      'two protocol blocks',
      { name: 'r', action: 'allow', postgres: {}, ssh: {} },
      /more than one of postgres, ssh and kubernetes/,
    ],
    ['bad table glob', { name: 'r', action: 'deny', postgres: { tables: ['orders'] } }, /not 'schema.table'/],
    [
      'table glob with two dots',
      { name: 'r', action: 'deny', postgres: { tables: ['a.b.c'] } },
      /not 'schema.table'/,
    ],
    [
      'unknown postgres class',
      { name: 'r', action: 'deny', postgres: { operations: ['select' as 'read'] } },
      /unknown postgres operation "select"/,
    ],
    [
      'unknown ssh operation',
      { name: 'r', action: 'deny', ssh: { operations: ['scp' as 'sftp'] } },
      /unknown ssh operation "scp"/,
    ],
    [
      'bad forward target',
      { name: 'r', action: 'allow', ssh: { forwardTargets: ['db.internal'] } },
      /not 'host:port'/,
    ],
  ])('%s', (_, rule, message) => {
    const problems: string[] = [];
    compileRule(rule, 3, problems);
    expect(problems.join('\n')).toMatch(message);
    expect(problems.join('\n')).toMatch(/rules\[3\]/);
  });
});
