// The broker's SSH certificate issuer: the signing itself lives in @chaperone/api (shared with the
// sidecar's standalone mode); here its errors become CredentialErrors for the broker's HTTP mapping.
import {
  type IssuedSshCertificate,
  SshCertificateError,
  type SshCertificateRequest,
  signSshUserCertificate as sign,
} from '@chaperone/api';
import { CredentialError } from './credential-error.js';

export {
  DEFAULT_SSH_BACKDATE_MS,
  type IssuedSshCertificate,
  MAX_SSH_TTL_MS,
  MIN_SSH_TTL_MS,
  type SshCertificateRequest,
} from '@chaperone/api';

export function signSshUserCertificate(req: SshCertificateRequest): IssuedSshCertificate {
  try {
    return sign(req);
  } catch (err) {
    if (err instanceof SshCertificateError) throw new CredentialError(err.reason, err.message);
    throw err;
  }
}
