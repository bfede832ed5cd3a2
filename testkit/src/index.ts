// Test harness: real servers on loopback for any test project (and for running by hand, see cli.ts).
export {
  type ControlPlane,
  type ControlPlaneOptions,
  installCrds,
  startControlPlane,
  TESTKIT_FIELD_MANAGER,
  type TestUser,
} from './control-plane.js';
export { csrUserKubeconfig } from './csr-user.js';
export { findHelm } from './helm.js';
export { asUser, type HostUser, hostUser } from './host-user.js';
export { type HttpsJsonResponse, httpsJson } from './https-json.js';
export {
  type KubeAuditEvent,
  type KubeAuditLog,
  kubeAuditLog,
  writeCredentiallessKubeconfig,
} from './kube-audit.js';
export { type LocalCluster, localCluster } from './local-cluster.js';
export { type ManagedProcess, startProcess, waitUntilReady } from './managed-process.js';
export { canConnect, freePort, readBanner } from './net.js';
export { type MintOptions, startOidcIssuer, type TestOidcIssuer } from './oidc-issuer.js';
export { type OpenSshClient, openSshClient, startEchoServer } from './openssh-client.js';
export {
  createOrdersDatabase,
  type InjectedSidecar,
  type OrdersScenario,
  operatorKubeconfig,
  ordersScenarioManifests,
  startInjectedSidecar,
} from './orders-scenario.js';
export { ATTACKS, type Attack, type AttackClass, SECRETS } from './pg-adversarial/corpus.js';
export {
  type AdversarialEnvironment,
  type PolicyName,
  startAdversarialEnvironment,
} from './pg-adversarial/environment.js';
export { type AttackOutcome, describeOutcome, runAttack, runCorpus } from './pg-adversarial/runner.js';
export { type SecretHit, secretScanner } from './pg-adversarial/scanner.js';
export { type AttackStep, type Endpoint, runSession, type SessionCapture } from './pg-adversarial/session.js';
export { type CampaignOptions, type CampaignResult, runFuzzCampaign } from './pg-fuzz/campaign.js';
export { type FuzzOptions, type FuzzReport, fuzzPostgres } from './pg-fuzz/driver.js';
export { type ConnectionScript, connectionScript, Rng } from './pg-fuzz/frames.js';
export {
  type FuzzTarget,
  type SidecarProcess,
  seedFuzzDatabase,
  startFuzzTarget,
  startSidecarProcess,
} from './pg-fuzz/target.js';
export { createTestCa, type IssuedCert, type TestCa } from './pki.js';
export { type PostgresOptions, postgresBinDir, startPostgres, type TestPostgres } from './postgres.js';
export { controlPlaneBinDir, pinnedVersions, REPO_ROOT, repoPath } from './repo.js';
export { type RunResult, run, runOk } from './run.js';
export { sshClientArgs, startSshd, type TestSshd } from './sshd.js';
export { waitFor } from './wait-for.js';
export { makeWorkDir, type WorkDir } from './workdir.js';
