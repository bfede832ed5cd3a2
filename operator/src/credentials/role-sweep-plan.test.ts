import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatRoleMark, parseRoleMark, type RoleMark } from './role-mark.js';
import {
  type ObservedRole,
  planPodRevocation,
  planRoleSweep,
  type RoleSweepAction,
} from './role-sweep-plan.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();
const MIN = 60_000;

function mark(over: Partial<RoleMark> = {}): RoleMark {
  return {
    v: 1,
    connection: 'team-a/orders-db',
    pod: 'team-a/agent-1',
    podUid: 'uid-1',
    createdAt: iso(T0),
    expiresAt: iso(T0 + 15 * MIN),
    ...over,
  };
}

let nextOid = 16_384;
function role(over: Partial<ObservedRole> & { mark?: RoleMark } = {}): ObservedRole {
  const { mark: m, ...rest } = over;
  const mk = m ?? mark();
  return {
    oid: nextOid++,
    name: `chaperone_agent_${nextOid}`,
    canLogin: true,
    superuser: false,
    validUntil: new Date(Date.parse(mk.expiresAt)),
    comment: formatRoleMark(mk),
    ...rest,
  };
}

const live = new Set(['uid-1']);
const opts = (nowMs: number, extra: Partial<Parameters<typeof planRoleSweep>[1]> = {}) => ({
  now: new Date(nowMs),
  livePodUids: live,
  dropAfterMs: 10 * MIN,
  ...extra,
});
const only = (actions: RoleSweepAction[]) => {
  expect(actions).toHaveLength(1);
  return actions[0]!;
};

describe('planRoleSweep', () => {
  it('keeps a role that is valid and whose pod is alive', () => {
    const a = only(planRoleSweep([role()], opts(T0 + MIN)));
    expect(a).toMatchObject({ kind: 'keep', state: 'active' });
  });

  it('disables a role whose VALID UNTIL has passed, even if its pod is alive', () => {
    const a = only(planRoleSweep([role()], opts(T0 + 15 * MIN)));
    expect(a).toMatchObject({ kind: 'disable', reason: 'expired' });
  });

  it('uses the earlier of VALID UNTIL and the mark’s expiresAt', () => {
    // Someone extended VALID UNTIL by hand: the mark still bounds it.
    const extended = role({ validUntil: new Date(T0 + 60 * MIN) });
    expect(only(planRoleSweep([extended], opts(T0 + 16 * MIN)))).toMatchObject({
      kind: 'disable',
      reason: 'expired',
    });
    // VALID UNTIL removed (NULL/infinity): the mark still bounds it.
    const unbounded = role({ validUntil: null });
    expect(only(planRoleSweep([unbounded], opts(T0 + 16 * MIN)))).toMatchObject({
      kind: 'disable',
      reason: 'expired',
    });
    // VALID UNTIL shortened: that counts.
    const shortened = role({ validUntil: new Date(T0 + 2 * MIN) });
    expect(only(planRoleSweep([shortened], opts(T0 + 3 * MIN)))).toMatchObject({
      kind: 'disable',
      reason: 'expired',
    });
  });

  it('disables a still-valid role whose pod is gone, once past the grace period', () => {
    const r = role();
    const gone = { livePodUids: new Set<string>() };
    expect(only(planRoleSweep([r], opts(T0 + 10_000, gone)))).toMatchObject({
      kind: 'keep',
      state: 'active',
    });
    expect(only(planRoleSweep([r], opts(T0 + 30_000, gone)))).toMatchObject({
      kind: 'disable',
      reason: 'pod-gone',
    });
    expect(only(planRoleSweep([r], opts(T0 + 1, { ...gone, podGoneGraceMs: 0 })))).toMatchObject({
      kind: 'disable',
      reason: 'pod-gone',
    });
  });

  it('accepts a predicate for live pods', () => {
    const r = role();
    expect(only(planRoleSweep([r], opts(T0 + MIN, { livePodUids: (u) => u === 'uid-1' }))).kind).toBe('keep');
    expect(only(planRoleSweep([r], opts(T0 + MIN, { livePodUids: () => false }))).kind).toBe('disable');
  });

  it('writes disabledAt = now into the new comment and keeps the rest of the mark', () => {
    const m = mark({ sessionId: 'sess-9' });
    const a = only(planRoleSweep([role({ mark: m })], opts(T0 + 20 * MIN)));
    if (a.kind !== 'disable') throw new Error('expected disable');
    expect(parseRoleMark(a.newComment)).toEqual({ ...m, disabledAt: iso(T0 + 20 * MIN) });
  });

  it('waits dropAfterMs after disabledAt, then drops', () => {
    const m = mark({ disabledAt: iso(T0 + 20 * MIN) });
    const r = role({ mark: m, canLogin: false });
    expect(only(planRoleSweep([r], opts(T0 + 29 * MIN)))).toMatchObject({
      kind: 'keep',
      state: 'awaiting-drop',
    });
    expect(only(planRoleSweep([r], opts(T0 + 30 * MIN)))).toMatchObject({
      kind: 'drop',
      disabledAt: iso(T0 + 20 * MIN),
    });
    expect(only(planRoleSweep([r], opts(T0 + 20 * MIN, { dropAfterMs: 0 })))).toMatchObject({ kind: 'drop' });
  });

  it('records a disable it did not do (NOLOGIN without disabledAt) instead of dropping at once', () => {
    const r = role({ canLogin: false });
    expect(only(planRoleSweep([r], opts(T0 + MIN)))).toMatchObject({
      kind: 'disable',
      reason: 'disabled-without-record',
    });
  });

  it('disables again a role someone re-enabled after it expired', () => {
    const r = role({ mark: mark({ disabledAt: iso(T0 + 16 * MIN) }), canLogin: true });
    const a = only(planRoleSweep([r], opts(T0 + 40 * MIN)));
    expect(a).toMatchObject({ kind: 'disable', reason: 'expired' });
    if (a.kind === 'disable') expect(parseRoleMark(a.newComment)?.disabledAt).toBe(iso(T0 + 40 * MIN));
  });

  it('never touches roles without our mark, whatever their name or state', () => {
    const foreign = [
      role({ name: 'chaperone_lookalike_aaaaaaaaaa', comment: null, validUntil: new Date(T0 - MIN) }),
      role({ name: 'chaperone_x', comment: 'created by the DBA' }),
      role({ name: 'chaperone_y', comment: '{"chaperone":{"v":2}}', canLogin: false }),
      role({ name: 'chaperone_z', comment: '{"chaperone":' }),
    ];
    expect(
      planRoleSweep(foreign, opts(T0 + 365 * 24 * 60 * MIN, { livePodUids: new Set(), dropAfterMs: 0 })),
    ).toEqual([]);
  });

  it('never touches a superuser, even one carrying our mark', () => {
    const su = role({ superuser: true, validUntil: new Date(T0 - MIN) });
    expect(planRoleSweep([su], opts(T0 + 60 * MIN, { livePodUids: new Set() }))).toEqual([]);
  });

  it('restricts to the given Connections', () => {
    const a = role({ mark: mark({ connection: 'team-a/orders-db' }) });
    const b = role({ mark: mark({ connection: 'team-b/billing-db' }) });
    const plan = planRoleSweep(
      [a, b],
      opts(T0 + 60 * MIN, { connections: (c) => c === 'team-b/billing-db' }),
    );
    expect(plan.map((x) => x.role.name)).toEqual([b.name]);
  });

  it('returns actions sorted by role name', () => {
    const rs = [role({ name: 'chaperone_c' }), role({ name: 'chaperone_a' }), role({ name: 'chaperone_b' })];
    expect(planRoleSweep(rs, opts(T0)).map((a) => a.role.name)).toEqual([
      'chaperone_a',
      'chaperone_b',
      'chaperone_c',
    ]);
  });

  it('refuses nonsense options', () => {
    expect(() => planRoleSweep([], { now: new Date(Number.NaN), livePodUids: live, dropAfterMs: 0 })).toThrow(
      /now/,
    );
    expect(() => planRoleSweep([], { now: new Date(T0), livePodUids: live, dropAfterMs: -1 })).toThrow(
      /dropAfterMs/,
    );
  });
});

describe('planPodRevocation', () => {
  it('disables every login role of that pod and nothing else', () => {
    const mine = role({ mark: mark({ podUid: 'uid-gone' }) });
    const mineDisabled = role({ mark: mark({ podUid: 'uid-gone', disabledAt: iso(T0) }), canLogin: false });
    const mineUnrecorded = role({ mark: mark({ podUid: 'uid-gone' }), canLogin: false });
    const other = role({ mark: mark({ podUid: 'uid-1' }) });
    const foreign = role({ comment: null });
    const plan = planPodRevocation(
      [mine, mineDisabled, mineUnrecorded, other, foreign],
      'uid-gone',
      new Date(T0),
    );
    expect(plan.map((a) => a.role.name).sort()).toEqual([mine.name, mineUnrecorded.name].sort());
    expect(plan.every((a) => a.reason === 'pod-deleted')).toBe(true);
  });
});

// ---- properties -------------------------------------------------------------------------------

const uidArb = fc.constantFrom('uid-1', 'uid-2', 'uid-3', 'uid-4');
// A coarse grid of instants so that equal and adjacent times (the edges of every rule) come up often.
const STEP = 500;
const timeArb = fc
  .tuple(fc.integer({ min: -20, max: 20 }), fc.constantFrom(0, 0, 0, -1, 1))
  .map(([k, jitter]) => T0 + k * STEP + jitter);
const markArb: fc.Arbitrary<RoleMark> = fc.record(
  {
    v: fc.constant(1 as const),
    connection: fc.constantFrom('a/db', 'b/db'),
    pod: fc.constantFrom('a/p1', 'a/p2'),
    podUid: uidArb,
    createdAt: timeArb.map(iso),
    expiresAt: timeArb.map(iso),
    sessionId: fc.string({ minLength: 1, maxLength: 8 }),
    disabledAt: timeArb.map(iso),
  },
  { requiredKeys: ['v', 'connection', 'pod', 'podUid', 'createdAt', 'expiresAt'] },
);
const foreignCommentArb = fc.oneof(
  fc.constant(null),
  fc.string(),
  fc.json(),
  markArb.map((m) => JSON.stringify({ chaperone: { ...m, v: 2 } })),
  markArb.map((m) => JSON.stringify({ chaperone: { ...m, podUid: 7 } })),
  markArb.map((m) => formatRoleMark(m).slice(1)),
);
type Gen = { role: ObservedRole; ours: boolean };
const roleArb: fc.Arbitrary<Gen> = fc
  .record({
    name: fc.stringMatching(/^chaperone_[a-z]{1,6}$/),
    canLogin: fc.boolean(),
    superuser: fc.boolean(),
    validUntil: fc.option(
      timeArb.map((t) => new Date(t)),
      { nil: null },
    ),
    ours: fc.boolean(),
    mark: markArb,
    foreign: foreignCommentArb,
  })
  .map((g) => ({
    ours: g.ours && !g.superuser,
    role: {
      oid: nextOid++,
      name: g.name,
      canLogin: g.canLogin,
      superuser: g.superuser,
      validUntil: g.validUntil,
      comment: g.ours ? formatRoleMark(g.mark) : g.foreign,
    },
  }));
const planArgs = fc.record({
  roles: fc.uniqueArray(roleArb, { selector: (g) => g.role.name, maxLength: 12 }),
  now: timeArb,
  live: fc.subarray(['uid-1', 'uid-2', 'uid-3', 'uid-4']),
  dropAfterMs: fc.integer({ min: 0, max: 10 }).map((k) => k * STEP),
  grace: fc.integer({ min: 0, max: 10 }).map((k) => k * STEP),
});

describe('planRoleSweep properties', () => {
  it('only ever plans for our roles, each exactly once; no foreign role or superuser appears', () => {
    fc.assert(
      fc.property(planArgs, ({ roles, now, live, dropAfterMs, grace }) => {
        const plan = planRoleSweep(
          roles.map((g) => g.role),
          { now: new Date(now), livePodUids: new Set(live), dropAfterMs, podGoneGraceMs: grace },
        );
        const ours = roles.filter((g) => g.ours && parseRoleMark(g.role.comment)).map((g) => g.role.name);
        expect(plan.map((a) => a.role.name).sort()).toEqual([...ours].sort());
        for (const a of plan) {
          expect(a.role.superuser).toBe(false);
          expect(parseRoleMark(a.role.comment)).toBeDefined();
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('never disables or drops a role that logs in, is unexpired and whose pod is alive', () => {
    fc.assert(
      fc.property(planArgs, ({ roles, now, live, dropAfterMs, grace }) => {
        const alive = new Set(live);
        const plan = planRoleSweep(
          roles.map((g) => g.role),
          { now: new Date(now), livePodUids: alive, dropAfterMs, podGoneGraceMs: grace },
        );
        for (const a of plan) {
          const m = parseRoleMark(a.role.comment)!;
          const unexpired =
            Date.parse(m.expiresAt) > now &&
            (a.role.validUntil === null || a.role.validUntil.getTime() > now);
          if (a.role.canLogin && unexpired && alive.has(m.podUid)) {
            expect(a.kind).toBe('keep');
          }
          if (a.kind === 'drop') {
            expect(a.role.canLogin).toBe(false);
            expect(now - Date.parse(m.disabledAt!)).toBeGreaterThanOrEqual(dropAfterMs);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('is settled after its own actions are applied (with dropAfterMs > 0): no further disables or drops', () => {
    fc.assert(
      fc.property(planArgs, ({ roles, now, live, dropAfterMs, grace }) => {
        const o = {
          now: new Date(now),
          livePodUids: new Set(live),
          dropAfterMs: Math.max(1, dropAfterMs),
          podGoneGraceMs: grace,
        };
        const first = planRoleSweep(
          roles.map((g) => g.role),
          o,
        );
        const dropped = new Set(first.filter((a) => a.kind === 'drop').map((a) => a.role.name));
        const after = roles
          .map((g) => g.role)
          .filter((r) => !dropped.has(r.name))
          .map((r) => {
            const a = first.find((x) => x.role.name === r.name);
            return a?.kind === 'disable' ? { ...r, canLogin: false, comment: a.newComment } : r;
          });
        expect(planRoleSweep(after, o).filter((a) => a.kind !== 'keep')).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });
});
