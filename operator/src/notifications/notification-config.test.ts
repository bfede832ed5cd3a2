import type { AccessPolicy } from '@chaperone/api';
import { describe, expect, it } from 'vitest';
import { dueNotifications, recordedKeys } from './due-notifications.js';
import { sampleRequest } from './fixtures.test-support.js';
import { parseNotificationConfig } from './notification-config.js';

describe('parseNotificationConfig', () => {
  it('fills defaults and trims the collector URL', () => {
    const c = parseNotificationConfig({
      collectorUrl: 'https://audit.example.com/',
      targets: [{ name: 'dba-slack', type: 'slack', secretName: 'slack-hook' }],
    });
    expect(c.collectorUrl).toBe('https://audit.example.com');
    expect(c.targets[0]).toEqual({
      name: 'dba-slack',
      type: 'slack',
      secretName: 'slack-hook',
      urlKey: 'url',
      signingKeyKey: 'signingKey',
      allPolicies: false,
    });
    expect(c.retry.attempts).toBe(6);
    expect(parseNotificationConfig(undefined).targets).toEqual([]);
  });

  it.each([
    [{ targets: [{ name: 'A', type: 'slack', secretName: 's' }] }, /name must be a DNS label/],
    [
      { targets: [{ name: 'a', type: 'email', secretName: 's' }] },
      /type must be one of slack, teams, webhook/,
    ],
    [{ targets: [{ name: 'a', type: 'slack', secretName: '../x' }] }, /secretName/],
    [
      {
        targets: [
          { name: 'a', type: 'slack', secretName: 's' },
          { name: 'a', type: 'teams', secretName: 't' },
        ],
      },
      /used twice/,
    ],
    [{ collectorUrl: 'javascript:alert(1)' }, /collectorUrl/],
    [{ retry: { attempts: 0 } }, /retry.attempts/],
    [[], /JSON object/],
  ])('refuses %j', (raw, message) => {
    expect(() => parseNotificationConfig(raw)).toThrow(message);
  });
});

describe('dueNotifications', () => {
  const config = parseNotificationConfig({
    targets: [
      { name: 'audit', type: 'webhook', secretName: 'hook', allPolicies: true },
      { name: 'dba-slack', type: 'slack', secretName: 'slack' },
      { name: 'ops-teams', type: 'teams', secretName: 'teams' },
    ],
  });
  const policy = {
    spec: { approval: { notify: [{ target: 'dba-slack' }, { target: 'gone' }] } },
  } as AccessPolicy;

  it('a pending request: its policy’s targets and the all-policies ones, an unknown name too (to be reported)', () => {
    const due = dueNotifications(sampleRequest(), policy, config, new Set());
    expect(due.map((d) => [d.targetName, d.event, d.target?.type])).toEqual([
      ['audit', 'requested', 'webhook'],
      ['dba-slack', 'requested', 'slack'],
      ['gone', 'requested', undefined],
    ]);
  });

  it('a request decided before anyone was told: no first message and no follow-up', () => {
    expect(
      dueNotifications(
        sampleRequest({ phase: 'Approved', decision: { verdict: 'Approved' } }),
        policy,
        config,
        new Set(),
      ),
    ).toEqual([]);
  });

  it('recorded deliveries are never due again; a decided request needs only the follow-up', () => {
    const recorded = recordedKeys([
      { target: 'audit', event: 'requested', state: 'Delivered' },
      { target: 'dba-slack', event: 'requested', state: 'Failed' },
    ]);
    expect(dueNotifications(sampleRequest(), policy, config, recorded).map((d) => d.targetName)).toEqual([
      'gone',
    ]);
    // Follow-ups go where the request was announced (or tried): not to "gone", never told.
    const decided = sampleRequest({ phase: 'Expired' });
    expect(
      dueNotifications(decided, policy, config, recorded).map((d) => `${d.targetName}/${d.event}`),
    ).toEqual(['audit/decided', 'dba-slack/decided']);
  });

  it('no policy (deleted): only the all-policies targets', () => {
    expect(dueNotifications(sampleRequest(), undefined, config, new Set()).map((d) => d.targetName)).toEqual([
      'audit',
    ]);
  });
});
