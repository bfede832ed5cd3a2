import type { FastifyReply } from 'fastify';

// Every UI response forbids everything but this origin. Pages carry no inline script or style,
// so the policy needs no nonce; the only exception is WebAssembly compilation for the terminal
// player ('wasm-unsafe-eval' allows compiling wasm, not evaluating JavaScript strings).
const BASE_POLICY = [
  "default-src 'none'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
];

export function contentSecurityPolicy(opts: { wasm?: boolean } = {}): string {
  const script = opts.wasm ? "script-src 'self' 'wasm-unsafe-eval'" : "script-src 'self'";
  return [...BASE_POLICY, script].join('; ');
}

/** Headers for pages and exports: audit data, so never cached and never framed. */
export function setPageHeaders(reply: FastifyReply, opts: { wasm?: boolean } = {}): void {
  reply.header('content-security-policy', contentSecurityPolicy(opts));
  reply.header('x-content-type-options', 'nosniff');
  reply.header('x-frame-options', 'DENY');
  // Not no-referrer: with it Chromium sends `Origin: null` on our own form posts.
  reply.header('referrer-policy', 'same-origin');
  reply.header('cache-control', 'no-store');
}

/** Headers for static assets (the same for every auditor, so cacheable). */
export function setAssetHeaders(reply: FastifyReply): void {
  reply.header('content-security-policy', contentSecurityPolicy());
  reply.header('x-content-type-options', 'nosniff');
  reply.header('cache-control', 'public, max-age=86400');
}
