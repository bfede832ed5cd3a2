// What each service documents it accepts, as checks a local receiver runs on what it got (tests;
// the real services cannot be reached from the test machines). Each returns the list of
// violations, empty when the payload is acceptable.
//
// Slack incoming webhooks (Block Kit): top-level `text` (the notification fallback) and/or
// `blocks`, at most 50 blocks; header: plain_text of at most 150 characters; section: `text` of at
// most 3000 and/or at most 10 `fields` of at most 2000; a text object is plain_text or mrkdwn;
// context: 1-10 elements; actions: 1-25 elements, a button's text plain_text of at most 75 and url
// of at most 3000.
// Teams Workflows webhook: {"type":"message","attachments":[{"contentType":
// "application/vnd.microsoft.card.adaptive","content":{"type":"AdaptiveCard","version":...,
// "body":[...]}}]}.
// Generic webhook: JSON, signed with HMAC-SHA256 over "timestamp.body".

import { createHmac, timingSafeEqual } from 'node:crypto';

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function textObject(v: unknown, where: string, max: number, errors: string[], plainOnly = false): void {
  if (!isObj(v)) return void errors.push(`${where}: not a text object`);
  if (v.type !== 'plain_text' && (plainOnly || v.type !== 'mrkdwn'))
    errors.push(`${where}: type ${String(v.type)}`);
  if (typeof v.text !== 'string' || v.text.length === 0) errors.push(`${where}: empty text`);
  else if (v.text.length > max) errors.push(`${where}: ${v.text.length} > ${max} characters`);
}

export function slackViolations(payload: unknown): string[] {
  const errors: string[] = [];
  if (!isObj(payload)) return ['not a JSON object'];
  if (typeof payload.text !== 'string' || !payload.text) errors.push('no fallback text');
  const blocks = payload.blocks;
  if (!Array.isArray(blocks) || blocks.length === 0) return [...errors, 'no blocks'];
  if (blocks.length > 50) errors.push(`${blocks.length} blocks > 50`);
  for (const [i, b] of (blocks as unknown[]).entries()) {
    const where = `blocks[${i}]`;
    if (!isObj(b)) {
      errors.push(`${where}: not an object`);
      continue;
    }
    switch (b.type) {
      case 'header':
        textObject(b.text, `${where}.text`, 150, errors, true);
        break;
      case 'section': {
        if (b.text === undefined && b.fields === undefined) errors.push(`${where}: neither text nor fields`);
        if (b.text !== undefined) textObject(b.text, `${where}.text`, 3000, errors);
        if (b.fields !== undefined) {
          if (!Array.isArray(b.fields) || b.fields.length > 10) errors.push(`${where}.fields: more than 10`);
          else
            for (const [j, f] of (b.fields as unknown[]).entries())
              textObject(f, `${where}.fields[${j}]`, 2000, errors);
        }
        break;
      }
      case 'context':
        if (!Array.isArray(b.elements) || b.elements.length < 1 || b.elements.length > 10)
          errors.push(`${where}: 1-10 elements`);
        else
          for (const [j, e] of (b.elements as unknown[]).entries())
            textObject(e, `${where}.elements[${j}]`, 3000, errors);
        break;
      case 'actions':
        if (!Array.isArray(b.elements) || b.elements.length < 1 || b.elements.length > 25)
          errors.push(`${where}: 1-25 elements`);
        else
          for (const [j, e] of (b.elements as unknown[]).entries()) {
            if (!isObj(e) || e.type !== 'button') {
              errors.push(`${where}.elements[${j}]: not a button`);
              continue;
            }
            textObject(e.text, `${where}.elements[${j}].text`, 75, errors, true);
            if (typeof e.url !== 'string' || e.url.length > 3000 || !/^https?:\/\//.test(e.url))
              errors.push(`${where}.elements[${j}].url: not an http(s) URL of at most 3000 characters`);
          }
        break;
      case 'divider':
        break;
      default:
        errors.push(`${where}: unexpected block type ${String(b.type)}`);
    }
  }
  return errors;
}

const CARD_ELEMENTS = new Set(['TextBlock', 'RichTextBlock', 'FactSet', 'Container', 'ColumnSet']);

export function teamsViolations(payload: unknown): string[] {
  if (!isObj(payload)) return ['not a JSON object'];
  const errors: string[] = [];
  if (payload.type !== 'message') errors.push('type is not "message"');
  const atts = payload.attachments;
  if (!Array.isArray(atts) || atts.length !== 1) return [...errors, 'attachments must hold one card'];
  const att = atts[0];
  if (!isObj(att) || att.contentType !== 'application/vnd.microsoft.card.adaptive')
    return [...errors, 'attachment contentType is not application/vnd.microsoft.card.adaptive'];
  const card = att.content;
  if (!isObj(card)) return [...errors, 'attachment has no content'];
  if (card.type !== 'AdaptiveCard') errors.push('content.type is not AdaptiveCard');
  if (typeof card.version !== 'string' || !/^1\.[0-5]$/.test(card.version))
    errors.push('content.version not 1.0-1.5');
  if (!Array.isArray(card.body) || card.body.length === 0) return [...errors, 'content.body is empty'];
  for (const [i, el] of (card.body as unknown[]).entries()) {
    if (!isObj(el) || typeof el.type !== 'string' || !CARD_ELEMENTS.has(el.type)) {
      errors.push(`body[${i}]: unknown element`);
      continue;
    }
    if (el.type === 'TextBlock' && (typeof el.text !== 'string' || !el.text))
      errors.push(`body[${i}]: TextBlock without text`);
    if (el.type === 'RichTextBlock') {
      const inl = el.inlines;
      if (
        !Array.isArray(inl) ||
        inl.some((r) => !isObj(r) || r.type !== 'TextRun' || typeof r.text !== 'string')
      )
        errors.push(`body[${i}]: RichTextBlock inlines must be TextRuns`);
    }
    if (el.type === 'FactSet') {
      const facts = el.facts;
      if (
        !Array.isArray(facts) ||
        facts.some((f) => !isObj(f) || typeof f.title !== 'string' || typeof f.value !== 'string')
      )
        errors.push(`body[${i}]: FactSet facts need title and value strings`);
    }
  }
  if (card.actions !== undefined) {
    if (!Array.isArray(card.actions)) errors.push('actions is not a list');
    else
      card.actions.forEach((a: unknown, i) => {
        if (
          !isObj(a) ||
          a.type !== 'Action.OpenUrl' ||
          typeof a.url !== 'string' ||
          !/^https?:\/\//.test(a.url)
        )
          errors.push(`actions[${i}]: not an Action.OpenUrl with an http(s) url`);
      });
  }
  return errors;
}

export function webhookViolations(
  body: string,
  headers: Record<string, string | string[] | undefined>,
  key: string,
): string[] {
  const errors: string[] = [];
  const ts = headers['x-chaperone-timestamp'];
  const sig = headers['x-chaperone-signature'];
  if (typeof ts !== 'string' || !/^\d+$/.test(ts)) errors.push('no timestamp header');
  if (typeof sig !== 'string') errors.push('no signature header');
  if (typeof ts === 'string' && typeof sig === 'string') {
    const want = Buffer.from(`sha256=${createHmac('sha256', key).update(`${ts}.${body}`).digest('hex')}`);
    const got = Buffer.from(sig);
    if (want.length !== got.length || !timingSafeEqual(want, got)) errors.push('signature does not verify');
  }
  if (typeof headers['idempotency-key'] !== 'string') errors.push('no idempotency-key header');
  try {
    const m = JSON.parse(body) as Json;
    if (m.kind !== 'AccessRequestNotification') errors.push('kind is not AccessRequestNotification');
    if (m.idempotencyKey !== headers['idempotency-key'])
      errors.push('idempotency key differs from the header');
  } catch {
    errors.push('body is not JSON');
  }
  return errors;
}
