import { describe, expect, it } from 'vitest';
import { sampleRequest } from './fixtures.test-support.js';
import { buildNotificationMessage } from './notification-message.js';
import { slackViolations, teamsViolations } from './payload-contracts.test-support.js';
import { escapeSlack, slackPayload, teamsPayload, webhookPayload } from './payloads.js';

const decided = () =>
  sampleRequest({
    phase: 'Denied',
    decision: { verdict: 'Denied', by: 'alice', at: '2030-01-01T12:01:00Z', comment: 'not now' },
  });

describe('notification payloads', () => {
  const opts = { collectorUrl: 'https://audit.example.com' };

  it('Slack: a Block Kit message within the documented limits, with who, what, why, expiry, the kubectl lines and the session link', () => {
    const p = slackPayload(buildNotificationMessage(sampleRequest(), 'requested', opts));
    expect(slackViolations(p)).toEqual([]);
    const all = JSON.stringify(p);
    for (const s of [
      'shop/orders-agent',
      'bob@example.com',
      'orders-db',
      'rule write-needs-approval',
      '2030-01-01T12:10:00Z',
    ])
      expect(all).toContain(s);
    expect(all).toContain('kubectl chaperone approve orders-db-7f3a9c -n shop');
    expect(all).toContain('kubectl chaperone deny orders-db-7f3a9c -n shop --reason');
    expect(all).toContain('https://audit.example.com/ui/sessions/sess-1');
  });

  it('Slack: hostile operation text cannot mention a channel, forge a link or leave its code block, and a huge one is cut', () => {
    const hostile = `SELECT 1 /* <!channel> <https://evil.example|click> \`\`\` *bold* */ ${'x'.repeat(20_000)}`;
    const p = slackPayload(buildNotificationMessage(sampleRequest({}, hostile), 'requested', opts));
    expect(slackViolations(p)).toEqual([]);
    const all = JSON.stringify(p);
    expect(all).not.toContain('<!channel>');
    expect(all).not.toContain('<https://evil');
    expect(all).toContain('&lt;!channel&gt;');
    const op = (p.blocks[2] as { text: { text: string } }).text.text;
    expect(op.match(/```/g)).toHaveLength(2);
    expect(escapeSlack('a&b')).toBe('a&amp;b');
  });

  it('Slack and Teams: the follow-up says who decided, when, and the comment, and has no kubectl lines', () => {
    const m = buildNotificationMessage(decided(), 'decided', opts);
    const s = slackPayload(m);
    expect(slackViolations(s)).toEqual([]);
    expect(JSON.stringify(s)).toContain('Denied by alice');
    expect(JSON.stringify(s)).toContain('not now');
    expect(JSON.stringify(s)).not.toContain('chaperone approve');
    const t = teamsPayload(m);
    expect(teamsViolations(t)).toEqual([]);
    expect(JSON.stringify(t)).toContain('Denied by alice');
  });

  it('Teams: the Workflows envelope around an Adaptive Card, free text in TextRuns only', () => {
    const p = teamsPayload(
      buildNotificationMessage(sampleRequest({}, '**bold** [x](https://evil.example)'), 'requested', opts),
    );
    expect(teamsViolations(p)).toEqual([]);
    const card = (p as { attachments: { content: { body: { type: string; text?: string }[] } }[] })
      .attachments[0]?.content;
    // Agent text never lands in a markdown-rendering TextBlock.
    expect(card?.body.filter((b) => b.type === 'TextBlock').some((b) => b.text?.includes('evil'))).toBe(
      false,
    );
    expect(JSON.stringify(p)).toContain('Action.OpenUrl');
  });

  it('no collector URL: no link, and the payloads stay valid', () => {
    const m = buildNotificationMessage(sampleRequest(), 'requested', { collectorUrl: '' });
    expect(m.sessionUrl).toBeUndefined();
    expect(slackViolations(slackPayload(m))).toEqual([]);
    expect(teamsViolations(teamsPayload(m))).toEqual([]);
  });

  it('webhook: versioned JSON with the idempotency key of request UID and event', () => {
    const p = webhookPayload(buildNotificationMessage(decided(), 'decided', opts)) as Record<string, unknown>;
    expect(p.kind).toBe('AccessRequestNotification');
    expect(p.idempotencyKey).toBe('0b5c-uid/decided');
    expect(p.decision).toEqual({
      verdict: 'Denied',
      by: 'alice',
      at: '2030-01-01T12:01:00Z',
      comment: 'not now',
    });
  });

  it('quotes names in the kubectl lines', () => {
    const req = sampleRequest();
    req.metadata.name = "it's";
    const m = buildNotificationMessage(req, 'requested', opts);
    expect(m.commands.approve).toContain(`'it'\\''s'`);
  });
});
