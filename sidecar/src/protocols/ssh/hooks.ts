// The SSH wire layer's contract with whatever decides and records (the shared pipeline). The wire layer
// knows SSH; the hooks know identity, policy, approvals and the recorder. Nothing reaches the target
// before decide() allowed it.

/** Who is on the agent side of one SSH connection to the gateway. */
export interface SshAgentIdentity {
  /** The user name the agent's client sent (`ssh user@host`); not trusted for anything. */
  readonly username: string;
  /** `none`/`publickey`: the pod itself; `password`: verifyPassword accepted the password. */
  readonly method: 'none' | 'publickey' | 'password';
  /** SHA256 fingerprint of the key the agent signed with (publickey only). */
  readonly publicKeyFingerprint?: string;
  /** What verifyPassword returned for an accepted password (e.g. the verified OIDC claims). */
  readonly verified?: Readonly<Record<string, unknown>>;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The agent's client software version, e.g. `SSH-2.0-OpenSSH_10.0p2 Debian-7`. */
  readonly clientVersion: string;
}

export interface SshPtyInfo {
  readonly term: string;
  readonly cols: number;
  readonly rows: number;
}

export type SftpOperationKind =
  | 'read'
  | 'write'
  | 'remove'
  | 'rename'
  | 'mkdir'
  | 'rmdir'
  | 'list'
  | 'stat'
  | 'setstat'
  | 'symlink'
  | 'readlink';

export type SshOperation =
  | { readonly kind: 'shell'; readonly pty?: SshPtyInfo }
  | { readonly kind: 'exec'; readonly command: string; readonly pty?: SshPtyInfo }
  /** Subsystems other than parsed SFTP (and SFTP itself when the gateway bridges it raw). */
  | { readonly kind: 'subsystem'; readonly name: string }
  /** direct-tcpip (`ssh -L`, `ssh -W`): a TCP connection the target opens to host:port. */
  | {
      readonly kind: 'port-forward';
      readonly host: string;
      readonly port: number;
      readonly originator: { readonly host: string; readonly port: number };
    }
  /** One SFTP request; `targetPath` for rename and symlink. */
  | {
      readonly kind: 'sftp';
      readonly op: SftpOperationKind;
      readonly path: string;
      readonly targetPath?: string;
    };

export type SshDecision =
  | { readonly verdict: 'allow'; readonly rule?: string }
  | { readonly verdict: 'deny'; readonly reason: string; readonly rule?: string };

/** asciicast v2 header (https://docs.asciinema.org/manual/asciicast/v2/). */
export interface AsciicastHeader {
  readonly version: 2;
  readonly width: number;
  readonly height: number;
  /** Unix seconds. */
  readonly timestamp: number;
  readonly env: { readonly TERM: string };
}

/** `[seconds since the header's timestamp, "o" | "r", data]`; "r" data is `COLSxROWS`. */
export type AsciicastFrame = readonly [number, 'o' | 'r', string];

export interface TransferCounts {
  /** Bytes from the agent toward the target. */
  readonly bytesIn: number;
  /** Bytes from the target toward the agent (stdout; stderr apart where there is one). */
  readonly bytesOut: number;
}

export type SshRecordEvent =
  | { readonly type: 'session.start'; readonly identity: SshAgentIdentity }
  | { readonly type: 'session.end'; readonly durationMs: number; readonly reason: string }
  /** An exec finished (or failed to start upstream): the argv as one string, as SSH carries it. */
  | ({
      readonly type: 'command';
      readonly channel: number;
      readonly command: string;
      readonly pty: boolean;
      readonly exitStatus: number | null;
      readonly exitSignal?: string;
      readonly bytesErr: number;
      readonly durationMs: number;
    } & TransferCounts)
  | ({
      readonly type: 'shell';
      readonly channel: number;
      readonly exitStatus: number | null;
      readonly exitSignal?: string;
      readonly bytesErr: number;
      readonly durationMs: number;
    } & TransferCounts)
  | ({
      readonly type: 'subsystem';
      readonly channel: number;
      readonly name: string;
      readonly durationMs: number;
    } & TransferCounts)
  /** A pty channel started: the asciicast header for its frames. */
  | { readonly type: 'output.start'; readonly channel: number; readonly header: AsciicastHeader }
  /** Terminal output and resizes, batched (at most ~32 KiB or 200 ms per event). */
  | { readonly type: 'output'; readonly channel: number; readonly frames: readonly AsciicastFrame[] }
  | ({
      readonly type: 'forward';
      readonly channel: number;
      readonly host: string;
      readonly port: number;
      readonly durationMs: number;
      readonly error?: string;
    } & TransferCounts)
  | {
      readonly type: 'sftp';
      readonly channel: number;
      readonly op: SftpOperationKind;
      readonly path: string;
      readonly targetPath?: string;
      /** Bytes read or written through this handle (read/write, recorded when the handle closes). */
      readonly bytes?: number;
      readonly outcome: 'ok' | 'failed' | 'denied';
    }
  /** Something the gateway refused without asking decide() (e.g. `ssh -R`, agent or X11 forwarding). */
  | { readonly type: 'refused'; readonly what: string; readonly reason: string };

export interface SshSessionHooks {
  /**
   * Called for every operation before it reaches the target. For an approval the hook waits itself
   * and may call notify(line) first: the line goes to the client's stderr at once (exec/shell).
   * A rejected promise is a denial (fail closed).
   */
  decide(op: SshOperation, notify: (line: string) => void): Promise<SshDecision>;
  /** Must not throw; must not block (queue and return). */
  record(event: SshRecordEvent): void;
}
