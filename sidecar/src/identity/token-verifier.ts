/**
 * Verifies an OIDC ID token an agent presented (as its PostgreSQL password today; as an SSH
 * keyboard-interactive answer or a bearer token in the other gateways). `OidcVerifier` in
 * `@chaperone/api` is the implementation.
 */
export interface TokenVerifier {
  verify(token: string): Promise<{ user: string; groups: string[]; issuer: string }>;
}
