// `make demo`: the Chaperone API on a real kube-apiserver, step by step, in well under a minute.
// Uses the compiled test harness (make builds it first). Everything runs on 127.0.0.1 and is removed
// at the end.
import { readFile } from 'node:fs/promises';
import { repoPath, startControlPlane } from '@chaperone/testkit';

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const step = (n: number, text: string) => console.log(`\n${bold(`${n}. ${text}`)}`);
const show = (cmd: string, out: string) => {
  console.log(dim(`$ ${cmd}`));
  console.log(out.trimEnd().replace(/^/gm, '  '));
};

const t0 = Date.now();
step(1, 'Start a real Kubernetes control plane (etcd + kube-apiserver) on 127.0.0.1');
const cp = await startControlPlane();
try {
  console.log(
    `  ready in ${((Date.now() - t0) / 1000).toFixed(1)} s at ${cp.server}, Chaperone CRDs installed`,
  );
  const kubectl = async (args: string[], user = cp.admin) => {
    const res = await cp.kubectl(args, { user });
    show(`kubectl ${args.join(' ')}`, res.code === 0 ? res.stdout : res.stderr);
    return res;
  };

  step(2, 'The platform team describes a database and who may use it');
  await kubectl(['apply', '-f', 'examples/']);
  await kubectl(['get', 'connections,accesspolicies']);

  step(3, 'The API server itself refuses a broken Connection (schema + CEL rules)');
  const invalid = await readFile(
    repoPath('examples', 'invalid', 'postgres-with-ssh-credentials.yaml'),
    'utf8',
  ).catch(() => '');
  if (invalid) await kubectl(['apply', '-f', 'examples/invalid/postgres-with-ssh-credentials.yaml']);

  step(4, 'A risky statement waits for a human as an AccessRequest (this one comes from examples/)');
  await kubectl(['get', 'accessrequests', '-o', 'wide']);

  step(5, 'An approver (a real client-certificate user in group dba) answers with a status patch');
  const ar = JSON.parse((await cp.kubectl(['get', 'ar', '-o', 'json'])).stdout).items[0]?.metadata
    ?.name as string;
  const alice = await cp.createUser('alice', ['dba']);
  await cp.kubectl([
    'create',
    'clusterrole',
    'chaperone-approver',
    '--verb=get,list,patch',
    '--resource=accessrequests.chaperone.dev,accessrequests.chaperone.dev/status',
  ]);
  await cp.kubectl([
    'create',
    'clusterrolebinding',
    'dba-approves',
    '--clusterrole=chaperone-approver',
    '--group=dba',
  ]);
  const decision = {
    status: {
      phase: 'Approved',
      decision: {
        verdict: 'Approved',
        comment: 'one-off cleanup',
        by: 'alice',
        groups: ['dba'],
        at: new Date().toISOString(),
      },
    },
  };
  await kubectl(
    ['patch', 'accessrequest', ar, '--subresource=status', '--type=merge', '-p', JSON.stringify(decision)],
    alice,
  );
  await kubectl(['get', 'accessrequests']);

  step(6, 'A decision is final: changing it afterwards is refused');
  await kubectl(
    [
      'patch',
      'accessrequest',
      ar,
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"decision":{"verdict":"Denied"}}}',
    ],
    alice,
  );

  console.log(
    `\n${bold('Done')} in ${((Date.now() - t0) / 1000).toFixed(1)} s. The sidecar gateway demo joins this once it lands (see docs/).`,
  );
} finally {
  await cp.stop();
}
