// The bodies sent to each service, pure. Everything that comes from the agent (operation text) or
// an approver (comments) is escaped for the service's markup so that it cannot ping a channel,
// forge a link or break out of its code block.
//
// Slack: an incoming webhook takes {text, blocks}; text is the notification fallback. Limits kept
// here: at most 50 blocks, header plain_text 150 characters, section text 3000, at most 10 section
// fields of 2000 each, button URL 3000.
// Teams: a Workflows ("When a Teams webhook request is received") URL takes
// {"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive",
// "content":{AdaptiveCard}}]}; free text goes into RichTextBlock TextRuns, which Teams does not
// render as markdown.

import { clip, headline, MAX_OPERATION_TEXT, type NotificationMessage } from './notification-message.js';

export const SLACK_LIMITS = {
  blocks: 50,
  header: 150,
  sectionText: 3_000,
  fields: 10,
  fieldText: 2_000,
  url: 3_000,
};
export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';
export const ADAPTIVE_CARD_VERSION = '1.4';

/** Slack mrkdwn: &, < and > are the control characters (mentions, links). */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Inside a ``` block a backtick run could close it: use a look-alike. */
function slackCode(text: string, max: number): string {
  return `\`\`\`${clip(escapeSlack(text).replace(/`/g, 'ˋ'), max - 6)}\`\`\``;
}

function mrkdwn(text: string) {
  return { type: 'mrkdwn', text };
}

function facts(m: NotificationMessage): [string, string][] {
  const out: [string, string][] = [
    ['Requester', m.requester.serviceAccount],
    ...(m.requester.onBehalfOf ? [['On behalf of', m.requester.onBehalfOf] as [string, string]] : []),
    ...(m.requester.pod ? [['Pod', m.requester.pod] as [string, string]] : []),
    ['Connection', `${m.connection} (${m.operation.type})`],
    ['Policy', m.rule ? `${m.policy}, rule ${m.rule}` : m.policy],
  ];
  if (m.event === 'requested') out.push(['Expires', m.expiresAt]);
  else {
    out.push(['Outcome', m.phase]);
    if (m.decision?.by) out.push(['Decided by', m.decision.by]);
    if (m.decision?.at) out.push(['At', m.decision.at]);
  }
  return out;
}

function title(m: NotificationMessage): string {
  if (m.event === 'requested') return 'Approval needed';
  if (m.phase === 'Expired') return 'Expired without a decision';
  return `${m.decision?.verdict ?? m.phase}${m.decision?.by ? ` by ${m.decision.by}` : ''}`;
}

export function slackPayload(m: NotificationMessage): { text: string; blocks: unknown[] } {
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(title(m), SLACK_LIMITS.header), emoji: false } },
    {
      type: 'section',
      fields: facts(m)
        .slice(0, SLACK_LIMITS.fields)
        .map(([k, v]) => mrkdwn(clip(`*${k}*\n${escapeSlack(v)}`, SLACK_LIMITS.fieldText))),
    },
    {
      type: 'section',
      text: mrkdwn(
        `*Operation*\n${slackCode(m.operation.text, Math.min(MAX_OPERATION_TEXT, SLACK_LIMITS.sectionText - 20))}`,
      ),
    },
  ];
  if (m.operation.riskReasons.length > 0) {
    const reasons = m.operation.riskReasons.map((r) => `• ${escapeSlack(r)}`).join('\n');
    blocks.push({
      type: 'section',
      text: mrkdwn(clip(`*Why approval is needed*\n${reasons}`, SLACK_LIMITS.sectionText)),
    });
  }
  if (m.decision?.comment) {
    blocks.push({
      type: 'section',
      text: mrkdwn(clip(`*Comment*\n${escapeSlack(m.decision.comment)}`, SLACK_LIMITS.sectionText)),
    });
  }
  if (m.event === 'requested') {
    blocks.push({
      type: 'section',
      text: mrkdwn(
        clip(
          `*Decide with kubectl*\n${slackCode(`${m.commands.approve}\n${m.commands.deny}`, 2_000)}`,
          SLACK_LIMITS.sectionText,
        ),
      ),
    });
  }
  if (m.sessionUrl && m.sessionUrl.length <= SLACK_LIMITS.url) {
    blocks.push({
      type: 'actions',
      elements: [
        { type: 'button', text: { type: 'plain_text', text: 'Open the session' }, url: m.sessionUrl },
      ],
    });
  }
  blocks.push({
    type: 'context',
    elements: [
      mrkdwn(escapeSlack(`AccessRequest ${m.request.namespace}/${m.request.name} · ${m.commands.describe}`)),
    ],
  });
  // The fallback text is mrkdwn too (notifications, clients without blocks).
  return {
    text: clip(escapeSlack(headline(m)), SLACK_LIMITS.sectionText),
    blocks: blocks.slice(0, SLACK_LIMITS.blocks),
  };
}

function textRun(text: string, extra: Record<string, unknown> = {}) {
  return { type: 'RichTextBlock', inlines: [{ type: 'TextRun', text, ...extra }] };
}

export function teamsPayload(m: NotificationMessage): unknown {
  const body: unknown[] = [
    {
      type: 'TextBlock',
      text: title(m),
      size: 'Large',
      weight: 'Bolder',
      wrap: true,
      style: 'heading',
    },
    // FactSet values render markdown; Kubernetes names cannot carry it, and the OIDC user is shown
    // below as plain text instead.
    {
      type: 'FactSet',
      facts: facts(m)
        .filter(([k]) => k !== 'On behalf of')
        .map(([k, v]) => ({ title: k, value: v })),
    },
    ...(m.requester.onBehalfOf ? [textRun(`On behalf of ${m.requester.onBehalfOf}`)] : []),
    { type: 'TextBlock', text: 'Operation', weight: 'Bolder', wrap: true },
    textRun(clip(m.operation.text, MAX_OPERATION_TEXT), { fontType: 'Monospace' }),
  ];
  if (m.operation.riskReasons.length > 0) {
    body.push({ type: 'TextBlock', text: 'Why approval is needed', weight: 'Bolder', wrap: true });
    body.push(textRun(m.operation.riskReasons.join('\n')));
  }
  if (m.decision?.comment) {
    body.push({ type: 'TextBlock', text: 'Comment', weight: 'Bolder', wrap: true });
    body.push(textRun(m.decision.comment));
  }
  if (m.event === 'requested') {
    body.push({ type: 'TextBlock', text: 'Decide with kubectl', weight: 'Bolder', wrap: true });
    body.push(textRun(`${m.commands.approve}\n${m.commands.deny}`, { fontType: 'Monospace' }));
  }
  body.push(
    textRun(`AccessRequest ${m.request.namespace}/${m.request.name}`, { isSubtle: true, size: 'Small' }),
  );
  const card = {
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    type: 'AdaptiveCard',
    version: ADAPTIVE_CARD_VERSION,
    body,
    ...(m.sessionUrl
      ? { actions: [{ type: 'Action.OpenUrl', title: 'Open the session', url: m.sessionUrl }] }
      : {}),
    msteams: { width: 'Full' },
  };
  return {
    type: 'message',
    attachments: [{ contentType: ADAPTIVE_CARD_CONTENT_TYPE, contentUrl: null, content: card }],
  };
}

/** The generic webhook's JSON: the message as is, versioned. */
export function webhookPayload(m: NotificationMessage): unknown {
  return { apiVersion: 'chaperone.dev/v1alpha1', kind: 'AccessRequestNotification', ...m };
}
