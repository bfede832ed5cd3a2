// Logging in to OpenSSH with a user certificate through ssh2, which has no built-in support for it
// (mscdex/ssh2 issue 551; PR 808 unmerged).
//
// Two gaps, both closed here:
// 1. ssh2's key parser reads a `*-cert-v01@openssh.com` line as if it were the plain key (it takes
//    the certificate's nonce for the public key). A custom agent hands ssh2 that parsed key with
//    getPublicSSH() returning the real certificate blob, so USERAUTH_REQUEST carries the certificate.
// 2. ssh2 names the signature with the public key algorithm (`ssh-ed25519-cert-v01@openssh.com`);
//    OpenSSH requires the plain signature algorithm (`ssh-ed25519`, sshkey_sigalg_by_name) and
//    refuses the login otherwise. Just before ssh2 finalizes that one signed request, the packet's
//    signature blob is rewritten with the plain name. This reaches into ssh2's Protocol instance
//    (`_protocol`, `_packetRW`): pinned to ssh2 1.17 by the integration test that logs in to sshd.
import ssh2, { type Client, type ParsedKey } from 'ssh2';
import { type SessionKeyPair, SshReader, sshString } from './ssh-keys.js';

const { BaseAgent, utils } = ssh2;

type SignCallback = (err: Error | null, signature?: Buffer) => void;

/** An agent with exactly one identity: the certificate, signed for with the session key. */
export class CertificateAgent extends BaseAgent<ParsedKey> {
  readonly key: ParsedKey;
  constructor(
    certificateLine: string,
    private readonly keyPair: SessionKeyPair,
  ) {
    super();
    const parts = certificateLine.trim().split(/\s+/);
    const blob = Buffer.from(parts[1] ?? '', 'base64');
    const parsed = utils.parseKey(certificateLine.trim());
    if (parsed instanceof Error || !/-cert-v01@openssh\.com$/.test(parsed.type)) {
      throw new Error('the SSH certificate cannot be read: expected "<type>-cert-v01@openssh.com AAAA…"');
    }
    parsed.getPublicSSH = () => blob;
    this.key = parsed;
  }
  getIdentities(cb: (err: Error | null, keys?: ParsedKey[]) => void): void {
    cb(null, [this.key]);
  }
  sign(_pubKey: ParsedKey, data: Buffer, options: unknown, cb?: SignCallback): void {
    const done = (typeof options === 'function' ? options : cb) as SignCallback;
    try {
      done(null, this.keyPair.sign(data));
    } catch (err) {
      done(err as Error);
    }
  }
}

interface PacketWriter {
  allocStart: number;
  alloc(size: number, force?: boolean): Buffer;
  finalize(packet: Buffer, force?: boolean): Buffer;
}
interface ProtocolInternals {
  _packetRW: { write: PacketWriter };
  authPK: (user: string, key: unknown, algo: unknown, cbSign?: unknown) => void;
}

/**
 * Call right after client.connect(): makes the signed publickey request for the agent's certificate
 * carry the plain signature algorithm name.
 */
export function enableCertificateLogin(client: Client, agent: CertificateAgent): void {
  const proto = (client as unknown as { _protocol?: ProtocolInternals })._protocol;
  if (!proto || typeof proto.authPK !== 'function' || !proto._packetRW?.write) {
    throw new Error('ssh2 internals changed: certificate login needs an update (see certificate-login.ts)');
  }
  const original = proto.authPK.bind(proto);
  proto.authPK = (user, key, algo, cbSign) => {
    const signer = typeof algo === 'function' ? algo : cbSign;
    if (key !== agent.key || typeof signer !== 'function') return original(user, key, algo, cbSign);
    const wrapped = (data: Buffer, cb: (sig: Buffer) => void) =>
      (signer as (d: Buffer, c: (s: Buffer) => void) => void)(data, (sig) => {
        rewriteNextFinalize(proto._packetRW.write);
        cb(sig);
      });
    return typeof algo === 'function' ? original(user, key, wrapped) : original(user, key, algo, wrapped);
  };
}

/** ssh2 builds and finalizes the request synchronously inside the signature callback. */
function rewriteNextFinalize(writer: PacketWriter): void {
  const finalize = writer.finalize;
  writer.finalize = function (this: PacketWriter, packet: Buffer, force?: boolean) {
    writer.finalize = finalize;
    const payload = rewriteSignatureAlgorithm(packet.subarray(writer.allocStart));
    const out = writer.alloc(payload.length, force);
    payload.copy(out, writer.allocStart);
    return finalize.call(this, out, force);
  };
}

/**
 * USERAUTH_REQUEST(publickey, signed): byte 50, user, service, "publickey", true, algo, key, sig.
 * Returns the payload with sig = string(plain algo) string(raw signature). The input may carry
 * padding after the payload; it is dropped.
 */
export function rewriteSignatureAlgorithm(packet: Buffer): Buffer {
  const r = new SshReader(packet);
  r.skip(1);
  const user = r.string();
  const service = r.string();
  const method = r.string();
  r.skip(1);
  const algo = r.string().toString('latin1');
  const key = r.string();
  const sig = new SshReader(r.string());
  sig.string();
  const raw = sig.string();
  const plain = algo.replace(/-cert-v01@openssh\.com$/, '');
  return Buffer.concat([
    Buffer.from([packet[0] as number]),
    sshString(user),
    sshString(service),
    sshString(method),
    Buffer.from([1]),
    sshString(algo),
    sshString(key),
    sshString(Buffer.concat([sshString(plain), sshString(raw)])),
  ]);
}
