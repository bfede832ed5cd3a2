// Serving certificates for the operator's HTTPS listener (admission webhooks and broker): the
// self-managed CA in a Secret (default) or files mounted by cert-manager.
export {
  type CertificateChangeHandler,
  type CertificateSource,
  type CertificateWatch,
  certificateExpiryGauge,
  certificateSerial,
  recordCertificateExpiry,
  type ServingCertificateMaterial,
  servingPairProblem,
  startCertificateWatch,
} from './certificate-source.js';
export { FileCertificateSource, type FileCertificateSourceOptions } from './file-certificate-source.js';
export {
  type CertificateKeyPair,
  canonicalIp,
  DAY_MS,
  generateCa,
  issueServingCert,
  NOT_BEFORE_BACKDATE_MS,
  type ServingCertificateNames,
  serviceDnsNames,
  YEAR_MS,
} from './pki.js';
export {
  CA_BUNDLE_FIELD_MANAGER,
  type EnsureResult,
  ServingCertificateManager,
  type ServingCertificateManagerOptions,
} from './serving-certificate-manager.js';
export {
  buildCaBundle,
  type CertificateAction,
  type CertificatePolicy,
  DEFAULT_CERTIFICATE_POLICY,
  isPreviousCaActive,
  mergeCaBundles,
  type PlanOptions,
  type PreviousCa,
  planServingCertificates,
  previousCaForRotation,
  type ServingCertificatePlan,
  type StoredServingCertificates,
  subjectAltNames,
  validateCertificatePolicy,
} from './serving-certificate-plan.js';
export {
  CA_CERT_KEY,
  CA_KEY_KEY,
  decodeServingSecret,
  encodeServingSecret,
  materialFromSecret,
  PREVIOUS_CA_CERT_KEY,
  PREVIOUS_CA_RETIRE_ANNOTATION,
  type ServingSecretState,
  TLS_CERT_KEY,
  TLS_KEY_KEY,
  TLS_SECRET_TYPE,
} from './serving-secret.js';
