// Moves an upstream response to the client: raw streaming (per-chunk, so `logs -f` and watches of
// non-Secret resources flush as they come), or inspected (Secret responses: whole JSON bodies
// bounded in size, watches one event per line bounded per event). Inspected responses fail closed:
// an encoding that cannot be parsed is refused before any byte reaches the client.

import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { downstreamHeaders } from './headers.js';
import { type RevealSecret, redactSecretDocument } from './secret-redaction.js';

export interface DeliveryLimits {
  /** Policy's per-Secret exception to redaction; absent: every Secret is redacted. */
  reveal?: RevealSecret;
  /** Largest inspected (decoded) response body. */
  maxBodyBytes: number;
  /** Largest single watch event. */
  maxEventBytes: number;
}

export interface Delivery {
  status: number;
  bytes: number;
  redacted: number;
  /** Set when the response could not be delivered as received (refused or cut). */
  error?: string;
}

export class InspectionRefused extends Error {}

async function write(res: ServerResponse, chunk: Buffer | string): Promise<void> {
  if (!res.write(chunk)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
}

/** Streams the body as received; each upstream chunk is written (and so flushed) at once. */
export async function deliverRaw(up: IncomingMessage, res: ServerResponse): Promise<Delivery> {
  res.writeHead(up.statusCode ?? 502, downstreamHeaders(up.headers, false));
  res.flushHeaders();
  let bytes = 0;
  for await (const chunk of up as AsyncIterable<Buffer>) {
    if (res.destroyed) break;
    bytes += chunk.length;
    await write(res, chunk);
  }
  res.end();
  return { status: up.statusCode ?? 502, bytes, redacted: 0 };
}

function isJson(up: IncomingMessage): boolean {
  const ct = (up.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  return ct === 'application/json';
}

/** The decoded body stream, or a refusal for encodings that cannot be inspected. */
function decoded(up: IncomingMessage): Readable {
  const enc = (up.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (enc === 'identity' || enc === '') return up;
  if (enc === 'gzip') return up.pipe(createGunzip());
  throw new InspectionRefused(`response content-encoding "${enc}" cannot be inspected`);
}

function checkInspectable(up: IncomingMessage): Readable {
  const emptyBody = up.statusCode === 204 || up.statusCode === 304 || up.headers['content-length'] === '0';
  if (!emptyBody && !isJson(up)) {
    throw new InspectionRefused(
      `response of type "${up.headers['content-type'] ?? 'none'}" cannot be inspected for Secret values`,
    );
  }
  return decoded(up);
}

/**
 * Buffers (bounded), rewrites and sends a whole JSON body: Secret redaction by default, or another
 * in-place `transform` returning how many values it changed. Throws InspectionRefused before any
 * output.
 */
export async function deliverRedactedBody(
  up: IncomingMessage,
  res: ServerResponse,
  limits: DeliveryLimits,
  transform?: (doc: unknown) => number | Promise<number>,
): Promise<Delivery> {
  const body = checkInspectable(up);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limits.maxBodyBytes) {
      up.destroy();
      throw new InspectionRefused(
        `response larger than ${limits.maxBodyBytes} bytes cannot be inspected; list in pages (--chunk-size)`,
      );
    }
    chunks.push(chunk);
  }
  const status = up.statusCode ?? 502;
  const headers = downstreamHeaders(up.headers, true);
  if (size === 0) {
    res.writeHead(status, headers);
    res.end();
    return { status, bytes: 0, redacted: 0 };
  }
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.concat(chunks, size).toString('utf8'));
  } catch {
    throw new InspectionRefused('response body is not valid JSON');
  }
  const changed = transform ? await transform(doc) : redactSecretDocument(doc, limits.reveal).values;
  const payload = Buffer.from(JSON.stringify(doc));
  res.writeHead(status, { ...headers, 'content-length': String(payload.length) });
  res.end(payload);
  return { status, bytes: payload.length, redacted: changed };
}

/**
 * Watch stream: newline-delimited JSON events, each redacted and written (flushed) on its own.
 * A line that is not JSON or too long ends the stream: the client re-watches, nothing leaks.
 */
export async function deliverRedactedWatch(
  up: IncomingMessage,
  res: ServerResponse,
  limits: DeliveryLimits,
): Promise<Delivery> {
  const body = checkInspectable(up);
  const status = up.statusCode ?? 502;
  res.writeHead(status, downstreamHeaders(up.headers, true));
  res.flushHeaders();
  const result: Delivery = { status, bytes: 0, redacted: 0 };
  let pending: Buffer[] = [];
  let pendingLen = 0;
  const emit = async (line: Buffer): Promise<boolean> => {
    const text = line.toString('utf8').trim();
    if (text === '') return true;
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      result.error = 'watch event is not valid JSON';
      return false;
    }
    result.redacted += redactSecretDocument(doc, limits.reveal).values;
    const out = `${JSON.stringify(doc)}\n`;
    result.bytes += Buffer.byteLength(out);
    await write(res, out);
    return true;
  };
  outer: for await (const chunk of body as AsyncIterable<Buffer>) {
    if (res.destroyed) break;
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
      const line = Buffer.concat([...pending, chunk.subarray(start, nl)]);
      pending = [];
      pendingLen = 0;
      start = nl + 1;
      if (!(await emit(line))) break outer;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingLen += chunk.length - start;
      if (pendingLen > limits.maxEventBytes) {
        result.error = `watch event larger than ${limits.maxEventBytes} bytes`;
        break;
      }
    }
  }
  if (!result.error && pendingLen > 0) await emit(Buffer.concat(pending));
  up.destroy();
  if (result.error) res.destroy();
  else res.end();
  return result;
}
