import { request } from 'node:https';

export interface HttpsJsonResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The body parsed as JSON; {} when empty. */
  json: Record<string, unknown>;
  text: string;
}

/**
 * One HTTPS request with a JSON (or raw) body, verified against `ca`, as a real client sends it;
 * never throws for an HTTP status (callers assert on it), only for a transport error.
 */
export function httpsJson(
  url: string,
  opts: {
    method?: string;
    ca: string;
    /** Bearer token for the Authorization header. */
    token?: string;
    /** An object is sent as JSON; a string or Buffer as it is (malformed bodies). */
    body?: unknown;
    headers?: Record<string, string>;
    /** TLS server name when the URL's host is an IP the certificate does not name. */
    servername?: string;
  },
): Promise<HttpsJsonResponse> {
  const raw =
    opts.body === undefined
      ? undefined
      : typeof opts.body === 'string' || Buffer.isBuffer(opts.body)
        ? opts.body
        : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? 'POST',
        ca: opts.ca,
        ...(opts.servername ? { servername: opts.servername } : {}),
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(raw !== undefined ? { 'content-type': 'application/json' } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () => {
          let json: Record<string, unknown> = {};
          try {
            json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
          } catch {
            // Not JSON: callers look at text.
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text });
        });
      },
    );
    req.on('error', reject);
    req.end(raw);
  });
}
