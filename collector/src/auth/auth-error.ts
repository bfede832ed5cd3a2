/** A refusal with the HTTP status and a message that tells the caller what to fix. */
export class AuthError extends Error {
  constructor(
    readonly status: 401 | 403 | 503,
    readonly code: 'unauthorized' | 'forbidden' | 'auth_unavailable',
    message: string,
    /** Short label for metrics. */
    readonly reason: string,
  ) {
    super(message);
  }
}

/** The token of an `Authorization: Bearer …` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

export function missingToken(who: string): AuthError {
  return new AuthError(
    401,
    'unauthorized',
    `missing bearer token: send "Authorization: Bearer <${who}>"`,
    'missing',
  );
}
