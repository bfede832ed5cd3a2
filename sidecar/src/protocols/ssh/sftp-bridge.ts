// SFTP parsed per request (ssh2 on both sides): every request that names a path goes through
// decide() first, and what ran is recorded with its path (and, for files, the bytes moved).
// - open: `read`, or `write` when any of WRITE / APPEND / CREAT / TRUNC is asked; reads and writes
//   on the handle are then not asked again (decided at open), and one `sftp` event with the byte
//   count is recorded at close.
// - opendir -> `list`; remove, rename, mkdir, rmdir, setstat; stat / lstat / realpath / readlink
//   -> `stat` (decided, not recorded: clients issue many).
// - symlink and extended requests are answered OP_UNSUPPORTED (the gateway advertises no
//   extensions; symlink argument order differs between OpenSSH and the RFC draft).
// A denial is SSH_FX_PERMISSION_DENIED with "chaperone: denied: <reason>" as its message.
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';
import type { SftpOperationKind, SshRecordEvent, SshSessionHooks } from './hooks.js';

const STATUS = { OK: 0, EOF: 1, PERMISSION_DENIED: 3, FAILURE: 4, OP_UNSUPPORTED: 8 } as const;
const OPEN_WRITE = 0x02 | 0x04 | 0x08 | 0x10;
const MAX_READ = 255 * 1024;
const MAX_HANDLES = 256;

interface OpenHandle {
  readonly path: string;
  readonly op: SftpOperationKind;
  bytes: number;
}

export interface SftpContext {
  readonly channel: number;
  readonly hooks: SshSessionHooks;
}

type Done = (err: (Error & { code?: unknown }) | null | undefined) => void;

/**
 * The agent's SFTP channel is accepted at once (OpenSSH sends INIT without waiting for the subsystem
 * reply, and ssh2 drops data on a session not yet accepted); requests wait for the target's SFTP
 * channel in arrival order.
 */
export function bridgeSftp(
  agent: SFTPWrapper,
  upstreamReady: Promise<SFTPWrapper>,
  ctx: SftpContext,
  /** The session the SFTP channel belongs to: ssh2 reports the agent's EOF only there ('eof'). */
  session: NodeJS.EventEmitter,
): void {
  let upstream!: SFTPWrapper;
  const ready = upstreamReady.then((u) => {
    upstream = u;
    upstream.on('error', () => exitAndClose(agent, 1));
    upstream.on('close', () => exitAndClose(agent, 0));
    agent.on('close', () => upstream.end());
  });
  // The agent's EOF ends the subsystem (sftp sends EOF when its batch is done, then waits for close).
  session.once('eof', () => {
    void ready.then(
      () => upstream.end(),
      () => {},
    );
    exitAndClose(agent, 0);
  });
  ready.catch(() => agent.end());
  agent.on('error', () => {});
  /** ssh2 answers OP_UNSUPPORTED for events without a listener, so every request type has one. */
  const on = <A extends [number, ...unknown[]]>(event: string, fn: (...args: A) => void) =>
    agent.on(event, (...args: A) =>
      ready
        .then(
          () => fn(...args),
          () => reply.status(args[0], STATUS.FAILURE, 'the target is unreachable'),
        )
        .catch((err: unknown) => reply.status(args[0], STATUS.FAILURE, (err as Error).message)),
    );
  // A reply to a channel that closed meanwhile must not throw into ssh2's parser (it would take
  // the process down from inside a socket callback).
  const safely =
    <A extends unknown[]>(fn: (...a: A) => void) =>
    (...a: A) => {
      try {
        fn(...a);
      } catch {
        // the agent's channel is gone
      }
    };
  const reply = {
    status: safely((reqId: number, code: number, message?: string) => agent.status(reqId, code, message)),
    handle: safely((reqId: number, handle: Buffer) => agent.handle(reqId, handle)),
    data: safely((reqId: number, data: Buffer) => agent.data(reqId, data)),
    name: safely((reqId: number, names: FileEntry[]) => agent.name(reqId, names)),
    attrs: safely((reqId: number, attrs: Attributes) => agent.attrs(reqId, attrs)),
  };
  const handles = new Map<string, OpenHandle>();
  const record = (e: Omit<Extract<SshRecordEvent, { type: 'sftp' }>, 'type' | 'channel'>) =>
    ctx.hooks.record({ type: 'sftp', channel: ctx.channel, ...e });
  const fail = (reqId: number, err: Error & { code?: unknown }) =>
    reply.status(reqId, typeof err.code === 'number' ? err.code : STATUS.FAILURE, err.message);
  const statusDone =
    (reqId: number, after?: (ok: boolean) => void): Done =>
    (err) => {
      if (err) fail(reqId, err);
      else reply.status(reqId, STATUS.OK);
      after?.(!err);
    };

  /** Decides op on path, then runs it; a denial answers PERMISSION_DENIED and is recorded. */
  const gate = (reqId: number, op: SftpOperationKind, path: string, run: () => void, targetPath?: string) => {
    const target = targetPath === undefined ? {} : { targetPath };
    ctx.hooks
      .decide({ kind: 'sftp', op, path, ...target }, () => {})
      .catch((err: unknown) => ({
        verdict: 'deny' as const,
        reason: `the decision failed (${(err as Error).message})`,
      }))
      .then((d) => {
        if (d.verdict === 'allow') return run();
        reply.status(reqId, STATUS.PERMISSION_DENIED, `chaperone: denied: ${d.reason}`);
        record({ op, path, ...target, outcome: 'denied' });
      })
      .catch(() => reply.status(reqId, STATUS.FAILURE));
  };
  const recorded = (op: SftpOperationKind, path: string, targetPath?: string) => (ok: boolean) =>
    record({ op, path, ...(targetPath === undefined ? {} : { targetPath }), outcome: ok ? 'ok' : 'failed' });

  on('OPEN', (reqId: number, path: string, flags: number, attrs: Attributes) => {
    const op: SftpOperationKind = flags & OPEN_WRITE ? 'write' : 'read';
    if (handles.size >= MAX_HANDLES) return reply.status(reqId, STATUS.FAILURE, 'too many open files');
    gate(reqId, op, path, () =>
      upstream.open(path, flags, attrs, (err, handle) => {
        if (err) {
          record({ op, path, outcome: 'failed' });
          return fail(reqId, err);
        }
        handles.set(handle.toString('hex'), { path, op, bytes: 0 });
        reply.handle(reqId, handle);
      }),
    );
  });
  on('OPENDIR', (reqId: number, path: string) =>
    gate(reqId, 'list', path, () =>
      upstream.opendir(path, (err, handle) => {
        if (err) return fail(reqId, err);
        handles.set(handle.toString('hex'), { path, op: 'list', bytes: 0 });
        reply.handle(reqId, handle);
      }),
    ),
  );
  on('READ', (reqId: number, handle: Buffer, offset: number, len: number) => {
    const h = handles.get(handle.toString('hex'));
    if (!h || h.op === 'list') return reply.status(reqId, STATUS.FAILURE, 'invalid handle');
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(len, MAX_READ)));
    upstream.read(handle, buf, 0, buf.length, offset, (err, n) => {
      if (err)
        return (err as { code?: unknown }).code === STATUS.EOF
          ? reply.status(reqId, STATUS.EOF)
          : fail(reqId, err);
      if (n === 0) return reply.status(reqId, STATUS.EOF);
      h.bytes += n;
      reply.data(reqId, buf.subarray(0, n));
    });
  });
  on('WRITE', (reqId: number, handle: Buffer, offset: number, data: Buffer) => {
    const h = handles.get(handle.toString('hex'));
    if (h?.op !== 'write')
      return reply.status(reqId, STATUS.PERMISSION_DENIED, 'chaperone: the file was not opened for writing');
    upstream.write(handle, data, 0, data.length, offset, (err) => {
      if (!err) h.bytes += data.length;
      statusDone(reqId)(err);
    });
  });
  on('READDIR', (reqId: number, handle: Buffer) => {
    if (handles.get(handle.toString('hex'))?.op !== 'list')
      return reply.status(reqId, STATUS.FAILURE, 'invalid handle');
    readdirFull(
      upstream,
      handle,
      (err: (Error & { code?: unknown }) | undefined, list: FileEntry[] | false) => {
        if (err)
          return (err as { code?: unknown }).code === STATUS.EOF
            ? reply.status(reqId, STATUS.EOF)
            : fail(reqId, err);
        if (!list || list.length === 0) return reply.status(reqId, STATUS.EOF);
        reply.name(reqId, list);
      },
    );
  });
  on('CLOSE', (reqId: number, handle: Buffer) => {
    const key = handle.toString('hex');
    const h = handles.get(key);
    if (!h) return reply.status(reqId, STATUS.FAILURE, 'invalid handle');
    handles.delete(key);
    upstream.close(handle, (err) => {
      statusDone(reqId)(err);
      if (h.op !== 'list') record({ op: h.op, path: h.path, bytes: h.bytes, outcome: err ? 'failed' : 'ok' });
      else record({ op: 'list', path: h.path, outcome: err ? 'failed' : 'ok' });
    });
  });
  const attrsDone = (reqId: number) => (err: (Error & { code?: unknown }) | undefined, attrs: Attributes) =>
    err ? fail(reqId, err) : reply.attrs(reqId, attrs);
  on('FSTAT', (reqId: number, handle: Buffer) => {
    if (!handles.has(handle.toString('hex'))) return reply.status(reqId, STATUS.FAILURE, 'invalid handle');
    upstream.fstat(handle, attrsDone(reqId));
  });
  on('FSETSTAT', (reqId: number, handle: Buffer, attrs: Attributes) => {
    const h = handles.get(handle.toString('hex'));
    if (!h) return reply.status(reqId, STATUS.FAILURE, 'invalid handle');
    gate(reqId, 'setstat', h.path, () =>
      upstream.fsetstat(handle, attrs, statusDone(reqId, recorded('setstat', h.path))),
    );
  });
  on('STAT', (reqId: number, path: string) =>
    gate(reqId, 'stat', path, () => upstream.stat(path, attrsDone(reqId))),
  );
  on('LSTAT', (reqId: number, path: string) =>
    gate(reqId, 'stat', path, () => upstream.lstat(path, attrsDone(reqId))),
  );
  on('REALPATH', (reqId: number, path: string) =>
    gate(reqId, 'stat', path, () =>
      upstream.realpath(path, (err, abs) => (err ? fail(reqId, err) : reply.name(reqId, [nameOnly(abs)]))),
    ),
  );
  on('READLINK', (reqId: number, path: string) =>
    gate(reqId, 'readlink', path, () =>
      upstream.readlink(path, (err, target) =>
        err ? fail(reqId, err) : reply.name(reqId, [nameOnly(target)]),
      ),
    ),
  );
  on('REMOVE', (reqId: number, path: string) =>
    gate(reqId, 'remove', path, () => upstream.unlink(path, statusDone(reqId, recorded('remove', path)))),
  );
  on('RMDIR', (reqId: number, path: string) =>
    gate(reqId, 'rmdir', path, () => upstream.rmdir(path, statusDone(reqId, recorded('rmdir', path)))),
  );
  on('MKDIR', (reqId: number, path: string, attrs: Attributes) =>
    gate(reqId, 'mkdir', path, () => upstream.mkdir(path, attrs, statusDone(reqId, recorded('mkdir', path)))),
  );
  on('SETSTAT', (reqId: number, path: string, attrs: Attributes) =>
    gate(reqId, 'setstat', path, () =>
      upstream.setstat(path, attrs, statusDone(reqId, recorded('setstat', path))),
    ),
  );
  on('RENAME', (reqId: number, from: string, to: string) =>
    gate(
      reqId,
      'rename',
      from,
      () => upstream.rename(from, to, statusDone(reqId, recorded('rename', from, to))),
      to,
    ),
  );
  on('SYMLINK', (reqId: number) =>
    reply.status(reqId, STATUS.OP_UNSUPPORTED, 'symlinks are not offered through the gateway'),
  );
  on('EXTENDED', (reqId: number) => reply.status(reqId, STATUS.OP_UNSUPPORTED));
}

interface SftpChannelInternals {
  outgoing?: { id: number; state: string };
  _protocol?: { exitStatus(id: number, status: number): void };
}

/**
 * Sends exit-status, then closes. ssh2's server-side SFTP object has no exit(); without an exit
 * status `ssh` exits 255 and scp (SFTP mode) reports failure although every request succeeded.
 */
function exitAndClose(agent: SFTPWrapper, status: number): void {
  const ch = agent as unknown as SftpChannelInternals;
  if (ch.outgoing?.state === 'open' || ch.outgoing?.state === 'eof') {
    try {
      ch._protocol?.exitStatus(ch.outgoing.id, status);
    } catch {
      // the connection is already gone
    }
  }
  agent.end();
}

type ReaddirCallback = (err: (Error & { code?: unknown }) | undefined, list: FileEntry[] | false) => void;

/** ssh2's readdir with `full: true` (keeps `.` and `..`, as the target sent them); not in its types. */
function readdirFull(sftp: SFTPWrapper, handle: Buffer, cb: ReaddirCallback): void {
  (sftp.readdir as unknown as (h: Buffer, o: { full: boolean }, c: ReaddirCallback) => void).call(
    sftp,
    handle,
    { full: true },
    cb,
  );
}

function nameOnly(filename: string): FileEntry {
  return { filename, longname: filename, attrs: {} as Attributes };
}
