import { randomBytes } from 'node:crypto';
import { type LocalCluster, localCluster, pinnedVersions, runOk } from '@chaperone/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The local cluster itself (make cluster-up): a real node, real pods with native sidecars, and the
// network contract the rest of the e2e suite relies on — pods reach the API server through the
// kubernetes Service and other pods through Service IPs, and nothing else: no DNS, no route out,
// and the host's firewall drops whatever a pod sends elsewhere even if it makes its own route.
// Pods reaching host services on the bridge gateway is shown by chaperone-install.e2e.test.ts (the
// sidecar, the operator and the collector all use PostgreSQL there); a separate check here with a
// listener in the test process failed intermittently for a reason not yet found, see the #6 note.
// Needs a running cluster (make cluster-up) and root (it reads the host's iptables counters).

const TOOLBOX = 'localhost/toolbox:chaperone-1';
// TEST-NET-3 (RFC 5737): never routed on the internet, and not this machine's own network either.
const OUTSIDE = '203.0.113.1';
const NS = `lc-e2e-${randomBytes(3).toString('hex')}`;

interface ContainerStatus {
  name: string;
  started?: boolean;
  state: { running?: { startedAt: string }; waiting?: { reason: string } };
}
interface PodJson {
  metadata: { name: string };
  spec: { initContainers?: { name: string; restartPolicy?: string }[] };
  status: { phase: string; initContainerStatuses?: ContainerStatus[]; containerStatuses?: ContainerStatus[] };
}

let cluster: LocalCluster;

async function kubectl(args: string[], input?: string): Promise<string> {
  const res = await cluster.kubectl(args, { input, timeoutMs: 180_000 });
  if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
  return res.stdout;
}

async function appPod(): Promise<PodJson> {
  const list = JSON.parse(await kubectl(['-n', NS, 'get', 'pods', '-l', 'app=smoke', '-o', 'json'])) as {
    items: PodJson[];
  };
  const pod = list.items.find((p) => p.status.phase === 'Running');
  if (!pod) throw new Error(`no running smoke pod in ${NS}`);
  return pod;
}

/** Runs a script in the Deployment's main container; resolves with its output, whatever the exit. */
async function execInPod(script: string): Promise<string> {
  const pod = await appPod();
  const res = await cluster.kubectl(
    ['-n', NS, 'exec', pod.metadata.name, '-c', 'main', '--', 'sh', '-c', `${script} 2>&1; echo "rc=$?"`],
    { timeoutMs: 60_000 },
  );
  return res.stdout + res.stderr;
}

/**
 * Packets a DROP rule of cluster-up's has dropped: the pod-egress chain in the raw table (before
 * routing) or the forward guard in mangle (after kube-proxy's DNAT).
 */
async function droppedPackets(
  where: 'raw CHAPERONE-POD-EGRESS' | 'mangle CHAPERONE-POD-FORWARD' = 'raw CHAPERONE-POD-EGRESS',
): Promise<number> {
  const [table, chain] = where.split(' ') as [string, string];
  const out = await runOk('iptables', ['-w', '-t', table, '-L', chain, '-v', '-x', '-n']);
  const drop = out.split('\n').find((l) => /\sDROP\s/.test(l));
  if (!drop) throw new Error(`no DROP rule in ${where}:\n${out}`);
  return Number(drop.trim().split(/\s+/)[0]);
}

async function serviceIp(name: string): Promise<string> {
  return kubectl(['-n', NS, 'get', 'service', name, '-o', 'jsonpath={.spec.clusterIP}']);
}

const external = Boolean(process.env.CHAPERONE_E2E_KUBECONFIG);

beforeAll(async () => {
  if (external) return;
  cluster = await localCluster();
  await kubectl(['create', 'namespace', NS]);
  // A Deployment whose pod has a native sidecar (init container with restartPolicy: Always) that
  // serves HTTP on port 9000, and a main container that waits for it: only a sidecar that keeps
  // running lets the main container start. A Service in front of it, as webhooks have.
  await kubectl(
    ['-n', NS, 'apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'smoke' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'smoke' } },
        template: {
          metadata: { labels: { app: 'smoke' } },
          spec: {
            terminationGracePeriodSeconds: 1,
            initContainers: [
              {
                name: 'sidecar',
                image: TOOLBOX,
                imagePullPolicy: 'Never',
                restartPolicy: 'Always',
                command: [
                  'sh',
                  '-c',
                  'mkdir -p /tmp/www && echo sidecar-here >/tmp/www/index.html && exec httpd -f -p 9000 -h /tmp/www',
                ],
              },
            ],
            containers: [
              {
                name: 'main',
                image: TOOLBOX,
                imagePullPolicy: 'Never',
                command: [
                  'sh',
                  '-c',
                  'until wget -q -O- http://127.0.0.1:9000/ | grep -q sidecar-here; do sleep 0.2; done; exec sleep 3600',
                ],
              },
            ],
          },
        },
      },
    }),
  );
  await kubectl(
    ['-n', NS, 'apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'smoke' },
      spec: { selector: { app: 'smoke' }, ports: [{ port: 443, targetPort: 9000 }] },
    }),
  );
  await kubectl(['-n', NS, 'rollout', 'status', 'deployment/smoke', '--timeout=150s']);
});

afterAll(async () => {
  await cluster?.kubectl(['delete', 'namespace', NS, '--wait=false']);
});

// Only on the local cluster: another cluster (CHAPERONE_E2E_KUBECONFIG, e.g. kind) has its own network.
describe.skipIf(external)('local cluster', () => {
  it('has a Ready node running the pinned Kubernetes version on containerd', async () => {
    const node = JSON.parse(await kubectl(['get', 'node', cluster.nodeName, '-o', 'json'])) as {
      status: {
        conditions: { type: string; status: string }[];
        nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string };
        addresses: { type: string; address: string }[];
      };
    };
    expect(node.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node.status.nodeInfo.kubeletVersion).toBe(pinnedVersions().KUBE_VERSION);
    expect(node.status.nodeInfo.containerRuntimeVersion).toMatch(/^containerd:\/\//);
    expect(node.status.addresses).toContainEqual({ type: 'InternalIP', address: cluster.gateway });
  });

  it("runs a Deployment's pod with a native sidecar running as a restartable init container", async () => {
    const pod = await appPod();
    expect(pod.spec.initContainers?.[0]).toMatchObject({ name: 'sidecar', restartPolicy: 'Always' });
    const sidecar = pod.status.initContainerStatuses?.find((c) => c.name === 'sidecar');
    expect(sidecar?.started).toBe(true);
    expect(sidecar?.state.running).toBeDefined();
    const main = pod.status.containerStatuses?.find((c) => c.name === 'main');
    expect(main?.state.running).toBeDefined();
  });

  it('lets the API server reach a pod behind a Service, as it calls webhooks (endpoint routing)', async () => {
    // --enable-aggregator-routing: the API server dials the Service's endpoints itself (which KCM
    // maintains), not the Service IP.
    const slices = JSON.parse(
      await kubectl([
        '-n',
        NS,
        'get',
        'endpointslices',
        '-l',
        'kubernetes.io/service-name=smoke',
        '-o',
        'json',
      ]),
    ) as { items: { endpoints?: { addresses: string[] }[] }[] };
    expect(slices.items.flatMap((s) => s.endpoints ?? []).length).toBeGreaterThan(0);
    const body = await kubectl(['get', '--raw', `/api/v1/namespaces/${NS}/services/http:smoke:443/proxy/`]);
    expect(body).toContain('sidecar-here');
  });

  it('routes Service IPs to their pods (kube-proxy), from pods and from the host', async () => {
    const ip = await serviceIp('smoke');
    expect(ip).toMatch(/^10\.96\./);
    // A pod calling a Service backed by a pod on the same bridge (its own, here: the hairpin case).
    // (nc, not busybox's static wget: that segfaulted on this request here.)
    const fromPod = await execInPod(`printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${ip} 443`);
    expect(fromPod).toContain('sidecar-here');
    expect(fromPod).toContain('rc=0');
    // The host (where the e2e suite runs) reaches Service IPs too.
    const fromHost = await fetch(`http://${ip}:443/`, { signal: AbortSignal.timeout(10_000) });
    expect(await fromHost.text()).toContain('sidecar-here');
  });

  it('drops what a Service would forward to an outside address', async () => {
    // A selector-less Service whose hand-written EndpointSlice names an outside address: the
    // raw-table rule lets the Service IP pass, kube-proxy DNATs it outside, and the mangle FORWARD
    // guard must drop it before it leaves the bridge.
    await kubectl(
      ['-n', NS, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name: 'outside' },
            spec: { ports: [{ name: 'http', port: 80, protocol: 'TCP' }] },
          },
          {
            apiVersion: 'discovery.k8s.io/v1',
            kind: 'EndpointSlice',
            metadata: { name: 'outside-1', labels: { 'kubernetes.io/service-name': 'outside' } },
            addressType: 'IPv4',
            ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
            endpoints: [{ addresses: [OUTSIDE], conditions: { ready: true } }],
          },
        ],
      }),
    );
    const ip = await serviceIp('outside');
    const before = await droppedPackets('mangle CHAPERONE-POD-FORWARD');
    // kube-proxy syncs within a second or so; every attempt must fail, and one must hit the guard.
    let out = '';
    for (let i = 0; i < 10 && (await droppedPackets('mangle CHAPERONE-POD-FORWARD')) === before; i++) {
      out = await execInPod(`if nc -w 2 ${ip} 80 </dev/null; then echo ESCAPED; else echo BLOCKED; fi`);
      expect(out).not.toContain('ESCAPED');
    }
    expect(await droppedPackets('mangle CHAPERONE-POD-FORWARD')).toBeGreaterThan(before);
  });

  it('lets an in-cluster client reach the API server through the kubernetes Service', async () => {
    // kube-whoami: KUBERNETES_SERVICE_HOST/PORT, the ServiceAccount token, TLS verified against the
    // ServiceAccount CA, SelfSubjectReview (hack/cluster/kube-whoami).
    const out = await execInPod('echo "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"; kube-whoami');
    expect(out).toContain(`${cluster.apiServiceIp}:443`);
    expect(out).toContain(`system:serviceaccount:${NS}:default`);
    expect(out).toContain('rc=0');
  });

  it('gives pods no DNS server and no route out of the pod network', async () => {
    const out = await execInPod('cat /etc/resolv.conf; ip -4 route');
    const servers = [...out.matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1]);
    // At most the pod's own loopback (nothing listens there): no resolver is ever asked.
    for (const s of servers) expect(s).toMatch(/^127\./);
    expect(out).not.toMatch(/^default/m);
    const direct = await execInPod(`nc -w 2 ${OUTSIDE} 80 </dev/null`);
    expect(direct).toMatch(/Network is unreachable/);
  });

  it('drops what a pod sends to an outside address, even over a route it added itself', async () => {
    const before = await droppedPackets();
    // A pod that may change its own routes (NET_ADMIN) adds a default route via the gateway and
    // connects outside: the raw-table rule on the bridge must drop the packets before routing.
    await kubectl(
      ['-n', NS, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'escape' },
        spec: {
          restartPolicy: 'Never',
          terminationGracePeriodSeconds: 1,
          containers: [
            {
              name: 'escape',
              image: TOOLBOX,
              imagePullPolicy: 'Never',
              securityContext: { runAsUser: 0, capabilities: { add: ['NET_ADMIN'] } },
              command: [
                'sh',
                '-c',
                `ip route add default via ${cluster.gateway} && ip -4 route | grep -q ^default && ` +
                  `if nc -w 3 ${OUTSIDE} 80 </dev/null; then echo ESCAPED; else echo BLOCKED; fi`,
              ],
            },
          ],
        },
      }),
    );
    await kubectl([
      '-n',
      NS,
      'wait',
      'pod/escape',
      '--for=jsonpath={.status.phase}=Succeeded',
      '--timeout=120s',
    ]);
    const logs = await kubectl(['-n', NS, 'logs', 'escape']);
    expect(logs).toContain('BLOCKED');
    expect(logs).not.toContain('ESCAPED');
    // The SYN (and its retransmissions) hit the DROP rule.
    expect(await droppedPackets()).toBeGreaterThan(before);
  });
});
