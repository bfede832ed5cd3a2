// Request bodies are read whole (bounded: the API server itself refuses objects over ~3 MiB) so
// that policy can look at what is written and the recording can keep it, Secret values redacted.

import type { IncomingMessage } from 'node:http';
import { parse as parseYaml } from 'yaml';
import { redactSecretWriteBody } from './secret-redaction.js';

/** The body, or undefined when it exceeds `max` (the rest is not read; the caller answers 413). */
export async function readBody(req: IncomingMessage, max: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > max) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

const MAX_RECORDED_BODY = 64 * 1024;
const JSON_BODY_TYPES = new Set([
  'application/json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/json-patch+json',
]);
const TEXT_BODY_TYPES = new Set(['application/apply-patch+yaml', 'application/yaml']);

/**
 * What the recording keeps of a write body, as JSON (YAML apply patches parsed), Secret values
 * redacted when the target is a Secret; nothing for binary (protobuf, CBOR), unparsable or
 * oversized bodies.
 */
export function recordedBody(
  body: Buffer,
  contentType: string | undefined,
  secret: boolean,
): string | undefined {
  if (body.length === 0 || body.length > MAX_RECORDED_BODY) return undefined;
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const isJson = JSON_BODY_TYPES.has(type);
  if (!isJson && !TEXT_BODY_TYPES.has(type)) return undefined;
  let doc: unknown;
  try {
    const text = body.toString('utf8');
    doc = isJson ? JSON.parse(text) : parseYaml(text);
  } catch {
    return undefined;
  }
  if (secret) redactSecretWriteBody(doc);
  return JSON.stringify(doc);
}
