import { describe, expect, it } from 'vitest';
import type { LabelSelector } from './generated/crds.js';
import { connectionsSelect, selectorMatches } from './label-selector.js';

const labels = { env: 'prod', team: 'orders', tier: 'db' };

describe('selectorMatches', () => {
  it.each<[string, LabelSelector, Record<string, string> | undefined, boolean]>([
    ['{} selects everything', {}, labels, true],
    ['{} selects a connection without labels', {}, undefined, true],
    ['matchLabels all present', { matchLabels: { env: 'prod', team: 'orders' } }, labels, true],
    ['matchLabels one differs', { matchLabels: { env: 'prod', team: 'billing' } }, labels, false],
    ['matchLabels missing key', { matchLabels: { region: 'eu' } }, labels, false],
    [
      'In, value listed',
      { matchExpressions: [{ key: 'env', operator: 'In', values: ['staging', 'prod'] }] },
      labels,
      true,
    ],
    [
      'In, value not listed',
      { matchExpressions: [{ key: 'env', operator: 'In', values: ['staging'] }] },
      labels,
      false,
    ],
    [
      'In, key missing',
      { matchExpressions: [{ key: 'region', operator: 'In', values: ['eu'] }] },
      labels,
      false,
    ],
    [
      'NotIn, value not listed',
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['staging'] }] },
      labels,
      true,
    ],
    [
      'NotIn, value listed',
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
      labels,
      false,
    ],
    [
      'NotIn, key missing matches',
      { matchExpressions: [{ key: 'region', operator: 'NotIn', values: ['eu'] }] },
      labels,
      true,
    ],
    ['Exists, present', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, labels, true],
    ['Exists, absent', { matchExpressions: [{ key: 'region', operator: 'Exists' }] }, labels, false],
    [
      'DoesNotExist, absent',
      { matchExpressions: [{ key: 'region', operator: 'DoesNotExist' }] },
      labels,
      true,
    ],
    [
      'DoesNotExist, present',
      { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] },
      labels,
      false,
    ],
    [
      'Exists with empty-string value',
      { matchExpressions: [{ key: 'x', operator: 'Exists' }] },
      { x: '' },
      true,
    ],
    [
      'labels and expressions must all hold',
      {
        matchLabels: { env: 'prod' },
        matchExpressions: [{ key: 'team', operator: 'In', values: ['billing'] }],
      },
      labels,
      false,
    ],
    [
      'labels and expressions all hold',
      {
        matchLabels: { env: 'prod' },
        matchExpressions: [
          { key: 'team', operator: 'In', values: ['orders'] },
          { key: 'tier', operator: 'Exists' },
          { key: 'legacy', operator: 'DoesNotExist' },
        ],
      },
      labels,
      true,
    ],
    [
      'unknown operator fails closed',
      { matchExpressions: [{ key: 'env', operator: 'Matches' as 'In', values: ['prod'] }] },
      labels,
      false,
    ],
    [
      'inherited keys are not labels',
      { matchExpressions: [{ key: 'toString', operator: 'Exists' }] },
      {},
      false,
    ],
  ])('%s', (_, selector, l, expected) => {
    expect(selectorMatches(selector, l)).toBe(expected);
  });
});

describe('connectionsSelect', () => {
  it('by name', () => {
    expect(connectionsSelect({ names: ['orders-db', 'bastion'] }, 'orders-db', {})).toBe(true);
    expect(connectionsSelect({ names: ['bastion'] }, 'orders-db', {})).toBe(false);
  });
  it('names and selector are a union', () => {
    const c = { names: ['bastion'], selector: { matchLabels: { team: 'orders' } } };
    expect(connectionsSelect(c, 'orders-db', labels)).toBe(true);
    expect(connectionsSelect(c, 'bastion', {})).toBe(true);
    expect(connectionsSelect(c, 'billing-db', { team: 'billing' })).toBe(false);
  });
  it('nothing selects nothing', () => {
    expect(connectionsSelect({}, 'orders-db', labels)).toBe(false);
    expect(connectionsSelect({ names: [] }, 'orders-db', labels)).toBe(false);
    expect(connectionsSelect(undefined, 'orders-db', labels)).toBe(false);
  });
});
