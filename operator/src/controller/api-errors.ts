// client-node v2 throws ApiException { code, body } with a message that embeds the whole response
// (headers included); its Watch throws Error { statusCode }. Logs and condition messages want the
// HTTP code and the Status message only.

export function apiErrorCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | undefined;
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

function statusMessage(body: unknown): string | undefined {
  let parsed = body;
  try {
    // Depending on the call, the Status arrives parsed, as JSON, or as JSON of a JSON string.
    for (let i = 0; i < 2 && typeof parsed === 'string'; i++) parsed = JSON.parse(parsed);
  } catch {
    return undefined;
  }
  const message = (parsed as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : undefined;
}

export function describeApiError(err: unknown): string {
  const code = apiErrorCode(err);
  if (code !== undefined) {
    const detail =
      statusMessage((err as { body?: unknown }).body) ??
      (err instanceof Error && !err.message.includes('\n') ? err.message : '');
    return `HTTP ${code}${detail ? `: ${detail}` : ''}`;
  }
  return err instanceof Error ? err.message : String(err);
}
