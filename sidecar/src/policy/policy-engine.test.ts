import { readFileSync } from 'node:fs';
import type { AccessPolicy } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  compilePolicies,
  compilePolicy,
  noPolicyReason,
  policiesFor,
  SESSION_RULE,
} from './policy-engine.js';
import { agent, connection, kube, pg, policy, risk, sshExec, sshForward } from './test-fixtures.js';
import type { Identity, Operation, PolicyDecision } from './types.js';

const ordersDb = connection('orders-db', { labels: { team: 'orders', env: 'prod' } });

function decide(
  policies: AccessPolicy[],
  op: Operation,
  who: Identity = agent(),
  target = ordersDb,
): PolicyDecision {
  return compilePolicies(policies, target).decide(who, op);
}

const names = (ps: AccessPolicy[]) => ps.map((p) => p.metadata.name);

describe('which policies apply', () => {
  const alice: Identity = { user: 'alice@example.com', groups: ['orders-oncall'] };
  const policies = [
    policy('by-sa', {}),
    policy('by-sa-other-ns-subject', {
      subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace: 'billing' }],
    }),
    policy('by-group', { subjects: [{ kind: 'Group', name: 'orders-oncall' }] }),
    policy('by-user', { subjects: [{ kind: 'User', name: 'alice@example.com' }] }),
    policy('by-selector', { connections: { selector: { matchLabels: { team: 'orders' } } } }),
    policy('by-expression', {
      connections: { selector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] } },
    }),
    policy('selector-misses', { connections: { selector: { matchLabels: { team: 'billing' } } } }),
    policy('other-connection', { connections: { names: ['bastion'] } }),
    policy('select-all', { connections: { selector: {} } }),
    policy('other-namespace', {}, 'billing'),
    policy('other-namespace-selector', { connections: { selector: {} } }, 'billing'),
  ];

  it('ServiceAccount subjects, by name and selector, in the same namespace only; sorted by name', () => {
    expect(names(policiesFor(agent(), ordersDb, policies))).toEqual([
      'by-expression',
      'by-sa',
      'by-selector',
      'select-all',
    ]);
  });
  it('Group and User subjects (OIDC identity)', () => {
    expect(names(policiesFor(alice, ordersDb, policies))).toEqual(['by-group', 'by-user']);
  });
  it('the SA of another namespace gets nothing here, even with a namespace-less subject', () => {
    const foreign: Identity = { serviceAccount: { namespace: 'billing', name: 'agent' }, groups: [] };
    expect(names(policiesFor(foreign, ordersDb, policies))).toEqual(['by-sa-other-ns-subject']);
  });
  it('policies never reach across namespaces', () => {
    const billingDb = connection('orders-db', { namespace: 'billing' });
    const billingAgent: Identity = { serviceAccount: { namespace: 'billing', name: 'agent' }, groups: [] };
    expect(names(policiesFor(billingAgent, billingDb, policies))).toEqual([
      'other-namespace',
      'other-namespace-selector',
    ]);
    // A shop ServiceAccount named in a billing policy still gets nothing in shop.
    const reach = policy(
      'reach',
      { subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace: 'shop' }] },
      'billing',
    );
    expect(policiesFor(agent(), ordersDb, [reach])).toEqual([]);
  });
  it('objects without a namespace are in options.defaultNamespace (default "default")', () => {
    const p = policy('p', {}, null);
    const c = connection('orders-db', { namespace: null });
    const inDefault: Identity = { serviceAccount: { namespace: 'default', name: 'agent' }, groups: [] };
    expect(names(policiesFor(inDefault, c, [p]))).toEqual(['p']);
    expect(names(policiesFor(agent(), c, [p], { defaultNamespace: 'shop' }))).toEqual(['p']);
    expect(policiesFor(agent(), c, [p])).toEqual([]);
    expect(policiesFor(agent(), ordersDb, [p])).toEqual([]); // 'default' ≠ 'shop'
  });
  it('the engine sees the same policies', () => {
    const view = compilePolicies(policies, ordersDb).forIdentity(agent());
    expect('names' in view && view.names).toEqual(['by-expression', 'by-sa', 'by-selector', 'select-all']);
  });
});

describe('no applicable policy', () => {
  it('refuses the session, naming namespace, identity and connection', () => {
    const who = agent({ user: 'alice@example.com', groups: ['oncall'] });
    const reason = noPolicyReason(who, ordersDb);
    expect(reason).toMatch(
      /^no AccessPolicy in namespace shop grants alice@example.com via shop\/agent \(groups: oncall\) access to connection orders-db/,
    );
    const engine = compilePolicies([policy('p', { connections: { names: ['bastion'] } })], ordersDb);
    expect(engine.forIdentity(who)).toEqual({ refused: reason });
    expect(engine.decide(who, pg(['read']))).toEqual({ action: 'deny', reason });
  });
  it('refuses an anonymous identity', () => {
    expect(decide([policy('p', {})], pg(['read']), { groups: [] })).toMatchObject({
      action: 'deny',
      reason: expect.stringContaining('grants anonymous access'),
    });
  });
});

describe('rules within one policy', () => {
  it('first match wins: deny before allow', () => {
    const p = policy('p', {
      rules: [
        {
          name: 'no-ddl',
          action: 'deny',
          reason: 'Schema changes go through migrations.',
          postgres: { operations: ['ddl'] },
        },
        { name: 'anything', action: 'allow' },
      ],
    });
    expect(decide([p], pg(['ddl'], ['public.orders']))).toEqual({
      action: 'deny',
      policy: 'p',
      rule: 'no-ddl',
      reason:
        'postgres ddl statement on public.orders is denied by rule no-ddl of AccessPolicy p: Schema changes go through migrations',
    });
    expect(decide([p], pg(['read']))).toEqual({ action: 'allow', policy: 'p', rule: 'anything' });
  });
  it('first match wins: allow before deny', () => {
    const p = policy('p', {
      rules: [
        { name: 'read', action: 'allow', postgres: { operations: ['read'] } },
        { name: 'nothing-else', action: 'deny' },
      ],
    });
    expect(decide([p], pg(['read'], ['public.orders']))).toMatchObject({ action: 'allow', rule: 'read' });
    expect(decide([p], pg(['write'], ['public.orders']))).toMatchObject({
      action: 'deny',
      rule: 'nothing-else',
    });
  });
  it('a statement that is read and write needs a rule covering both', () => {
    const p = policy('p', {
      rules: [
        { name: 'read', action: 'allow', postgres: { operations: ['read'] } },
        { name: 'write', action: 'approve', postgres: { operations: ['write'] } },
        { name: 'rw', action: 'allow', postgres: { operations: ['read', 'write'], tables: ['public.tmp'] } },
      ],
    });
    expect(decide([p], pg(['read', 'write'], ['public.orders']))).toMatchObject({
      action: 'deny',
      reason: expect.stringMatching(
        /^no rule allows this postgres read\+write statement on public.orders: AccessPolicy p in namespace shop was consulted/,
      ),
    });
    expect(decide([p], pg(['read', 'write'], ['public.tmp']))).toMatchObject({ action: 'allow', rule: 'rw' });
  });
  it('an out-of-scope table falls through to the next rule', () => {
    const p = policy('p', {
      rules: [
        { name: 'orders', action: 'allow', postgres: { tables: ['public.orders'] } },
        { name: 'rest', action: 'approve' },
      ],
    });
    expect(decide([p], pg(['read'], ['public.orders', 'public.customers']))).toMatchObject({
      action: 'approve',
      rule: 'rest',
    });
  });
});

describe('session statements', () => {
  const strict = policy('strict', { rules: [{ name: 'deny-all', action: 'deny' }] });
  it('are allowed without consulting rules', () => {
    expect(decide([strict], pg(['session']))).toEqual({
      action: 'allow',
      policy: 'strict',
      rule: SESSION_RULE,
    });
  });
  it('still meet guardrails (SET ROLE)', () => {
    expect(decide([strict], pg(['session'], [], [risk('set-role', 'SET ROLE postgres')]))).toMatchObject({
      action: 'deny',
      policy: 'strict',
      rule: SESSION_RULE,
      guardrail: 'set-role',
      reason: expect.stringMatching(
        /^SET ROLE postgres is refused \(guardrail set-role of AccessPolicy strict\)/,
      ),
    });
  });
  it("a statement with another class besides 'session' goes through the rules", () => {
    expect(decide([strict], pg(['session', 'read']))).toMatchObject({ action: 'deny', rule: 'deny-all' });
  });
  it('a statement with no class at all is denied', () => {
    expect(decide([policy('p', {})], pg([]))).toMatchObject({
      action: 'deny',
      reason: expect.stringContaining('no statement class'),
    });
    expect(decide([policy('p', {})], pg([]))).not.toHaveProperty('policy');
  });
});

describe('combining policies', () => {
  const allowAll = (name: string) => policy(name, { rules: [{ name: 'all', action: 'allow' }] });
  const approveAll = (name: string, groups: string[]) =>
    policy(name, { rules: [{ name: 'all', action: 'approve' }], approval: { approvers: { groups } } });
  const denyAll = (name: string) => policy(name, { rules: [{ name: 'all', action: 'deny' }] });
  const sshOnly = (name: string) => policy(name, { rules: [{ name: 'ssh', action: 'allow', ssh: {} }] });

  it.each([
    ['allow alone', [allowAll('a')], 'allow', 'a'],
    ['allow + approve → approve', [allowAll('a'), approveAll('b', ['dba'])], 'approve', 'b'],
    ['approve + deny → deny', [approveAll('a', ['dba']), denyAll('b')], 'deny', 'b'],
    ['allow + deny → deny', [denyAll('z'), allowAll('a')], 'deny', 'z'],
    ['a policy without a matching rule contributes nothing', [sshOnly('a'), allowAll('b')], 'allow', 'b'],
    [
      'ties go to the first policy by name',
      [approveAll('b', ['two']), approveAll('a', ['one'])],
      'approve',
      'a',
    ],
  ] as const)('%s', (_, policies, action, deciding) => {
    const d = decide([...policies], pg(['read'], ['public.orders']));
    expect(d.action).toBe(action);
    expect(d.policy).toBe(deciding);
  });

  it('the approval comes from the deciding policy', () => {
    const d = decide([approveAll('b', ['two']), approveAll('a', ['one'])], pg(['read']));
    expect(d).toMatchObject({ action: 'approve', approvers: { groups: ['one'], users: [] } });
  });
  it('no matching rule anywhere → deny naming the operation and the policies consulted', () => {
    const d = decide([sshOnly('a'), sshOnly('b')], pg(['write'], ['public.orders']));
    expect(d).toEqual({
      action: 'deny',
      reason:
        'no rule allows this postgres write statement on public.orders: AccessPolicy a, b in namespace shop were ' +
        'consulted and none has a matching rule; ask the policy owners for a rule that covers it',
    });
  });
  it('a guardrail of one policy does not escalate another policy result', () => {
    const quiet = policy('a', { rules: [{ name: 'all', action: 'allow' }], guardrails: [] });
    const loud = policy('b', { rules: [{ name: 'ssh', action: 'allow', ssh: {} }] }); // default guardrails, no pg match
    expect(
      decide([quiet, loud], pg(['write'], ['public.orders'], [risk('delete-without-where')])),
    ).toMatchObject({
      action: 'allow',
      policy: 'a',
    });
  });
});

describe('guardrails', () => {
  const orders = (extra: Partial<AccessPolicy['spec']> = {}) =>
    policy('orders-agents', {
      rules: [
        { name: 'writes', action: 'allow', postgres: { operations: ['write'] } },
        { name: 'ddl', action: 'approve', postgres: { operations: ['ddl'] } },
        { name: 'no-admin', action: 'deny', postgres: { operations: ['admin'] } },
      ],
      ...extra,
    });
  const deleteAll = pg(
    ['write'],
    ['public.orders'],
    [risk('delete-without-where', 'DELETE without WHERE on public.orders')],
  );

  it('the default list applies when spec.guardrails is absent: allow → approve', () => {
    expect(decide([orders()], deleteAll)).toEqual({
      action: 'approve',
      policy: 'orders-agents',
      rule: 'writes',
      guardrail: 'delete-without-where',
      reason:
        'DELETE without WHERE on public.orders needs approval (guardrail delete-without-where of AccessPolicy ' +
        'orders-agents); waiting up to 10m for approval from group dba',
      approvers: { groups: ['dba'], users: [] },
      required: 1,
      timeoutMs: 600_000,
    });
  });
  it('defaults deny file access, ALTER SYSTEM and SET ROLE', () => {
    for (const d of ['file-access', 'alter-system', 'set-role']) {
      expect(decide([orders()], pg(['write'], [], [risk(d)]))).toMatchObject({
        action: 'deny',
        guardrail: d,
      });
    }
  });
  it('defaults leave unbounded-select, copy-to and multi-statement-write alone', () => {
    for (const d of ['unbounded-select', 'copy-to', 'multi-statement-write']) {
      expect(decide([orders()], pg(['write'], [], [risk(d)]))).toMatchObject({ action: 'allow' });
    }
  });
  it('[] turns them off', () => {
    expect(decide([orders({ guardrails: [] })], deleteAll)).toMatchObject({
      action: 'allow',
      rule: 'writes',
    });
  });
  it('a list replaces the defaults', () => {
    const p = orders({ guardrails: [{ detector: 'unbounded-select', action: 'deny' }] });
    expect(decide([p], deleteAll)).toMatchObject({ action: 'allow' });
    expect(
      decide([p], pg(['write'], [], [risk('unbounded-select', 'SELECT of all of public.orders')])),
    ).toMatchObject({
      action: 'deny',
      guardrail: 'unbounded-select',
      reason: expect.stringMatching(
        /^SELECT of all of public.orders is refused \(guardrail unbounded-select of AccessPolicy orders-agents\); do it another way/,
      ),
    });
  });
  it('approve → deny', () => {
    const p = orders({ guardrails: [{ detector: 'drop', action: 'deny' }] });
    expect(decide([p], pg(['ddl'], ['public.x'], [risk('drop')]))).toMatchObject({
      action: 'deny',
      rule: 'ddl',
      guardrail: 'drop',
    });
  });
  it('approve + approve guardrail stays the rule’s approval', () => {
    const d = decide([orders()], pg(['ddl'], ['public.x'], [risk('drop')]));
    expect(d).toMatchObject({ action: 'approve', rule: 'ddl' });
    expect(d).not.toHaveProperty('guardrail');
  });
  it('never relaxes a deny', () => {
    expect(decide([orders()], pg(['admin'], [], [risk('drop')]))).toMatchObject({
      action: 'deny',
      rule: 'no-admin',
    });
    expect(decide([orders()], pg(['admin'], [], [risk('drop')]))).not.toHaveProperty('guardrail');
  });
  it('only detectors of the operation protocol apply', () => {
    expect(decide([orders()], pg(['write'], [], [risk('rm-rf')]))).toMatchObject({ action: 'allow' });
  });
  it('do not apply when no rule matched (the operation is denied anyway)', () => {
    expect(decide([orders()], pg(['read'], [], [risk('drop')]))).not.toHaveProperty('guardrail');
  });
  it('ssh and kubernetes defaults', () => {
    const p = policy('ops', { connections: { names: ['bastion', 'cluster-api'] } });
    const bastion = connection('bastion', { type: 'ssh' });
    const api = connection('cluster-api', { type: 'kubernetes' });
    expect(decide([p], sshExec('rm -rf /srv', [risk('rm-rf', 'rm -rf')]), agent(), bastion)).toMatchObject({
      action: 'approve',
      guardrail: 'rm-rf',
    });
    expect(decide([p], sshExec('sudo -i', [risk('privilege-escalation')]), agent(), bastion)).toMatchObject({
      action: 'approve',
    });
    expect(
      decide([p], kube('get', 'secrets', { namespace: 'shop', risks: [risk('read-secrets')] }), agent(), api),
    ).toMatchObject({
      action: 'approve',
      guardrail: 'read-secrets',
    });
    expect(
      decide(
        [p],
        kube('create', 'pods', { subresource: 'exec', namespace: 'shop', risks: [risk('exec')] }),
        agent(),
        api,
      ),
    ).toMatchObject({
      action: 'allow',
    });
  });
});

describe('approval', () => {
  const approving = (approval: NonNullable<AccessPolicy['spec']['approval']>) =>
    policy('p', {
      rules: [{ name: 'ask', action: 'approve', reason: 'Data changes need a DBA.' }],
      approval,
    });

  it('carries approvers, required and the timeout in ms', () => {
    const d = decide(
      [
        approving({
          approvers: { groups: ['dba'], users: ['alice@example.com'] },
          required: 2,
          timeout: '1h30m',
        }),
      ],
      pg(['write'], ['public.orders']),
    );
    expect(d).toEqual({
      action: 'approve',
      policy: 'p',
      rule: 'ask',
      reason:
        'postgres write statement on public.orders needs approval (rule ask of AccessPolicy p: Data changes need a DBA); ' +
        'waiting up to 1h30m for 2 approvals from group dba or alice@example.com',
      approvers: { groups: ['dba'], users: ['alice@example.com'] },
      required: 2,
      timeoutMs: 5_400_000,
    });
  });
  it('defaults: one approval, 10 minutes', () => {
    expect(decide([approving({ approvers: { users: ['bob'] } })], pg(['read']))).toMatchObject({
      required: 1,
      timeoutMs: 600_000,
    });
  });
  it('without approvers nobody could approve: deny', () => {
    expect(decide([approving({})], pg(['read']))).toMatchObject({
      action: 'deny',
      policy: 'p',
      rule: 'ask',
      reason: expect.stringContaining('names no approvers in spec.approval.approvers'),
    });
  });
  it('approvalOf() gives a policy its compiled approval, defaults applied', () => {
    const view = compilePolicies(
      [approving({ approvers: { users: ['bob'] }, timeout: '45s' })],
      ordersDb,
    ).forIdentity(agent());
    if ('refused' in view) throw new Error(view.refused);
    expect(view.approvalOf('p')).toEqual({
      approvers: { groups: [], users: ['bob'] },
      required: 1,
      timeoutMs: 45_000,
    });
    expect(view.approvalOf('other')).toBeUndefined();
  });
  it('the decision does not share arrays with the compiled policy', () => {
    const engine = compilePolicies([approving({ approvers: { groups: ['dba'] } })], ordersDb);
    const d = engine.decide(agent(), pg(['read']));
    if (d.action !== 'approve') throw new Error('expected approve');
    d.approvers.groups.push('everyone');
    expect(engine.decide(agent(), pg(['read']))).toMatchObject({ approvers: { groups: ['dba'] } });
  });
});

describe('broken policies fail closed', () => {
  it.each<[string, Partial<AccessPolicy['spec']>, RegExp]>([
    [
      'bad timeout',
      { approval: { approvers: { groups: ['dba'] }, timeout: 'ten minutes' } },
      /spec.approval.timeout: invalid duration "ten minutes"/,
    ],
    [
      'timeout too short',
      { approval: { approvers: { groups: ['dba'] }, timeout: '5s' } },
      /between 10s and 24h/,
    ],
    [
      'timeout too long',
      { approval: { approvers: { groups: ['dba'] }, timeout: '25h' } },
      /between 10s and 24h/,
    ],
    ['required out of range', { approval: { approvers: { groups: ['dba'] }, required: 0 } }, /required is 0/],
    ['unknown action', { rules: [{ name: 'r', action: 'permit' as 'allow' }] }, /action "permit"/],
    [
      'duplicate rule names',
      {
        rules: [
          { name: 'r', action: 'allow' },
          { name: 'r', action: 'deny' },
        ],
      },
      /rule name r is used twice/,
    ],
    ['no rules', { rules: [] }, /spec.rules is empty/],
    [
      'unknown guardrail',
      { guardrails: [{ detector: 'nope' as 'drop', action: 'deny' }] },
      /unknown detector "nope"/,
    ],
  ])('%s: denies every operation, naming the problem', (_, spec, problem) => {
    const p = policy('broken', spec);
    expect(compilePolicy(p).problems.join('\n')).toMatch(problem);
    const d = decide([p, policy('fine', {})], pg(['read']));
    expect(d).toMatchObject({ action: 'deny', policy: 'broken' });
    expect(d.action === 'deny' && d.reason).toMatch(
      /^AccessPolicy broken cannot be used, so it denies everything: /,
    );
    expect(compilePolicies([p], ordersDb).problems[0]?.policy).toBe('broken');
  });
  it('a broken policy that does not apply changes nothing', () => {
    const broken = policy('broken', { subjects: [{ kind: 'User', name: 'someone-else' }], rules: [] });
    expect(decide([broken, policy('fine', {})], pg(['read']))).toMatchObject({
      action: 'allow',
      policy: 'fine',
    });
  });
});

describe('operations that do not fit the connection', () => {
  it('an ssh operation on a postgres connection is denied', () => {
    expect(decide([policy('p', {})], sshExec('ls'))).toMatchObject({
      action: 'deny',
      reason: expect.stringContaining('is a postgres connection'),
    });
  });
  it('an unknown operation type is denied', () => {
    expect(decide([policy('p', {})], { type: 'ftp' } as unknown as Operation)).toMatchObject({
      action: 'deny',
    });
  });
});

describe('reasons never contain command arguments', () => {
  it('ssh exec reasons name only the program', () => {
    const p = policy('p', {
      connections: { names: ['bastion'] },
      rules: [{ name: 'no', action: 'deny', ssh: {} }],
    });
    const d = decide(
      [p],
      sshExec('mysql -psecret123 -e "select 1"'),
      agent(),
      connection('bastion', { type: 'ssh' }),
    );
    expect(d.action === 'deny' && d.reason).toBe('ssh exec of mysql is denied by rule no of AccessPolicy p');
    expect(JSON.stringify(d)).not.toContain('secret123');
  });
});

describe('the examples/ policies', () => {
  const load = (file: string) =>
    parse(readFileSync(new URL(`../../../examples/${file}`, import.meta.url), 'utf8')) as AccessPolicy;
  const orders = load('orders-agents-policy.yaml');
  const ops = load('ops-agents-policy.yaml');
  const ns = { defaultNamespace: 'shop' };
  const ordersAgent: Identity = { serviceAccount: { namespace: 'shop', name: 'orders-agent' }, groups: [] };
  const oncall: Identity = { user: 'carol@example.com', groups: ['orders-oncall'] };
  const deployBot: Identity = { serviceAccount: { namespace: 'shop', name: 'deploy-bot' }, groups: [] };

  it('orders-agents: read, approve writes to orders, refuse DDL and other tables', () => {
    const engine = compilePolicies([orders, ops], connection('orders-db', { namespace: null }), ns);
    expect(engine.problems).toEqual([]);
    expect(engine.decide(ordersAgent, pg(['read'], ['public.customers']))).toMatchObject({
      action: 'allow',
      rule: 'read',
    });
    expect(engine.decide(oncall, pg(['read'], ['public.customers']))).toMatchObject({
      action: 'allow',
      rule: 'read',
    });
    expect(engine.decide(ordersAgent, pg(['write'], ['public.orders']))).toMatchObject({
      action: 'approve',
      rule: 'write-needs-approval',
      approvers: { groups: ['dba'], users: [] },
      timeoutMs: 600_000,
    });
    expect(engine.decide(ordersAgent, pg(['write'], ['public.customers']))).toMatchObject({ action: 'deny' });
    expect(engine.decide(ordersAgent, pg(['ddl'], ['public.orders']))).toMatchObject({
      action: 'deny',
      rule: 'no-ddl',
    });
    expect(engine.decide(ordersAgent, pg(['write'], ['public.orders'], [risk('file-access')]))).toMatchObject(
      { action: 'deny', guardrail: 'file-access' },
    );
    expect(engine.forIdentity(deployBot)).toHaveProperty('refused');
  });
  it('ops-agents: bastion commands and kube rules', () => {
    const bastion = compilePolicies(
      [orders, ops],
      connection('bastion', { type: 'ssh', namespace: null }),
      ns,
    );
    expect(bastion.decide(deployBot, sshExec('systemctl status nginx'))).toMatchObject({
      action: 'allow',
      rule: 'bastion-status',
    });
    expect(bastion.decide(deployBot, sshExec('systemctl status nginx; cat /etc/shadow'))).toMatchObject({
      action: 'deny',
    });
    expect(
      bastion.decide(deployBot, sshExec('sudo systemctl restart nginx', [risk('privilege-escalation')])),
    ).toMatchObject({
      action: 'approve',
      rule: 'bastion-restart',
      approvers: { groups: ['sre'], users: ['alice@example.com'] },
      timeoutMs: 900_000,
    });
    expect(bastion.decide(deployBot, sshExec('df -h', [risk('rm-rf')]))).toMatchObject({
      action: 'deny',
      guardrail: 'rm-rf',
    });
    expect(bastion.decide(deployBot, sshForward('db:5432'))).toMatchObject({ action: 'deny' });

    const api = compilePolicies(
      [orders, ops],
      connection('cluster-api', { type: 'kubernetes', namespace: null }),
      ns,
    );
    expect(api.decide(deployBot, kube('list', 'pods', { namespace: 'shop' }))).toMatchObject({
      action: 'allow',
      rule: 'kube-read',
    });
    expect(api.decide(deployBot, kube('list', 'pods', { namespace: 'kube-system' }))).toMatchObject({
      action: 'deny',
    });
    expect(
      api.decide(
        deployBot,
        kube('create', 'pods', { subresource: 'exec', namespace: 'shop', name: 'web-1' }),
      ),
    ).toMatchObject({
      action: 'approve',
      rule: 'kube-rollout',
    });
    expect(
      api.decide(deployBot, kube('get', 'secrets', { namespace: 'shop', risks: [risk('read-secrets')] })),
    ).toMatchObject({ action: 'deny' });
  });
});
