// Runs one harness component by hand until Ctrl-C, printing how to reach it:
//   node testkit/dist/cli.js postgres|sshd|control-plane|oidc
import { startControlPlane } from './control-plane.js';
import { startOidcIssuer } from './oidc-issuer.js';
import { startPostgres } from './postgres.js';
import { startSshd } from './sshd.js';

type Stoppable = { stop(): Promise<void> };

const components: Record<string, () => Promise<{ handle: Stoppable; lines: string[] }>> = {
  async postgres() {
    const pg = await startPostgres({ tls: process.argv.includes('--tls') });
    return {
      handle: pg,
      lines: [
        `PostgreSQL ${pg.host}:${pg.port} (superuser postgres, SCRAM-SHA-256)`,
        `export PGHOST=${pg.host} PGPORT=${pg.port} PGUSER=postgres PGPASSWORD='${pg.password}'`,
        ...(pg.ca ? [`export PGSSLMODE=verify-full PGSSLROOTCERT=${pg.ca.certPath}`] : []),
      ],
    };
  },
  async sshd() {
    const sshd = await startSshd();
    const key = await sshd.newUserKey('you');
    const cert = await sshd.signUserKey(key, { validity: '-1m:+1h' });
    return {
      handle: sshd,
      lines: [
        `sshd ${sshd.host}:${sshd.port}, login user ${sshd.loginUser}, user CA ${sshd.userCaKeyPath}`,
        `certificate (1 h): ${cert}`,
        `ssh -p ${sshd.port} -i ${key} -o UserKnownHostsFile=${sshd.knownHostsPath} ${sshd.loginUser}@127.0.0.1`,
      ],
    };
  },
  async 'control-plane'() {
    const cp = await startControlPlane();
    return {
      handle: cp,
      lines: [
        `kube-apiserver ${cp.server} with the Chaperone CRDs`,
        `export KUBECONFIG=${cp.admin.kubeconfigPath}`,
      ],
    };
  },
  async oidc() {
    const idp = await startOidcIssuer();
    const token = await idp.mint({ subject: 'dev@example.test', groups: ['dba'], expiresIn: 3600 });
    return {
      handle: idp,
      lines: [
        `OIDC issuer ${idp.issuer} (client id ${idp.clientId})`,
        `ID token for dev@example.test (groups dba, 1 h):`,
        token,
      ],
    };
  },
};

const name = process.argv[2] ?? '';
const start = components[name];
if (!start) {
  console.error(`usage: cli.js ${Object.keys(components).join('|')}`);
  process.exit(2);
}
const { handle, lines } = await start();
for (const line of lines) console.log(line);
console.log('Ctrl-C stops it and removes its temp dir.');
const shutdown = async () => {
  await handle.stop();
  process.exit(0);
};
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
setInterval(() => {}, 1 << 30);
