import type { PolicySubject } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { anySubjectMatches, subjectMatches } from './subjects.js';
import type { Identity } from './types.js';

const bot: Identity = { serviceAccount: { namespace: 'shop', name: 'orders-agent' }, groups: [] };
const alice: Identity = {
  serviceAccount: { namespace: 'shop', name: 'orders-agent' },
  user: 'alice@example.com',
  groups: ['orders-oncall', 'everyone'],
};
const anonymous: Identity = { groups: [] };

describe('subjectMatches', () => {
  it.each<[string, PolicySubject, Identity, boolean]>([
    [
      'SA, namespace defaults to the policy namespace',
      { kind: 'ServiceAccount', name: 'orders-agent' },
      bot,
      true,
    ],
    [
      'SA, explicit namespace',
      { kind: 'ServiceAccount', name: 'orders-agent', namespace: 'shop' },
      bot,
      true,
    ],
    [
      'SA, other namespace',
      { kind: 'ServiceAccount', name: 'orders-agent', namespace: 'billing' },
      bot,
      false,
    ],
    ['SA, other name', { kind: 'ServiceAccount', name: 'deploy-bot' }, bot, false],
    ['SA, identity without SA', { kind: 'ServiceAccount', name: 'orders-agent' }, anonymous, false],
    ['Group, member', { kind: 'Group', name: 'orders-oncall' }, alice, true],
    ['Group, not a member', { kind: 'Group', name: 'dba' }, alice, false],
    ['Group, no groups', { kind: 'Group', name: 'orders-oncall' }, bot, false],
    ['Group, case matters', { kind: 'Group', name: 'Orders-Oncall' }, alice, false],
    ['User, same user', { kind: 'User', name: 'alice@example.com' }, alice, true],
    ['User, other user', { kind: 'User', name: 'bob@example.com' }, alice, false],
    ['User, no user', { kind: 'User', name: 'alice@example.com' }, bot, false],
    ['User named like the SA does not match the SA', { kind: 'User', name: 'orders-agent' }, bot, false],
    ['Group named like a user does not match', { kind: 'Group', name: 'alice@example.com' }, alice, false],
    [
      'unknown kind names nobody',
      { kind: 'Robot', name: 'orders-agent' } as unknown as PolicySubject,
      bot,
      false,
    ],
  ])('%s', (_, subject, identity, expected) => {
    expect(subjectMatches(subject, identity, 'shop')).toBe(expected);
  });

  it('uses the policy namespace passed in for namespace-less SA subjects', () => {
    expect(subjectMatches({ kind: 'ServiceAccount', name: 'orders-agent' }, bot, 'billing')).toBe(false);
  });

  it('anySubjectMatches: one match is enough; none or missing subjects is no match', () => {
    const subjects: PolicySubject[] = [
      { kind: 'Group', name: 'dba' },
      { kind: 'User', name: 'alice@example.com' },
    ];
    expect(anySubjectMatches(subjects, alice, 'shop')).toBe(true);
    expect(anySubjectMatches(subjects, bot, 'shop')).toBe(false);
    expect(anySubjectMatches([], bot, 'shop')).toBe(false);
    expect(anySubjectMatches(undefined, bot, 'shop')).toBe(false);
  });
});
