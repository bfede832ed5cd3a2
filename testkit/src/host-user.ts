import { userInfo } from 'node:os';
import { run } from './run.js';

/** The unprivileged account that servers refusing root (PostgreSQL) and SSH logins run as. */
export interface HostUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  /** True when the harness runs as root and must drop privileges for this user's processes. */
  readonly switchUser: boolean;
}

/** Account created by hack/setup-host.sh on machines where the tests run as root (CI). */
export const TEST_ACCOUNT = process.env.CHAPERONE_TEST_USER ?? 'chaperone';

let cached: Promise<HostUser> | undefined;

export function hostUser(): Promise<HostUser> {
  cached ??= resolveHostUser();
  return cached;
}

async function resolveHostUser(): Promise<HostUser> {
  const me = userInfo();
  if (me.uid !== 0) {
    return { name: me.username, uid: me.uid, gid: me.gid, home: me.homedir, switchUser: false };
  }
  const res = await run('getent', ['passwd', TEST_ACCOUNT]);
  const fields = res.stdout.trim().split(':');
  if (res.code !== 0 || fields.length < 7) {
    throw new Error(
      `running as root, the harness needs the unprivileged account '${TEST_ACCOUNT}' (PostgreSQL refuses root, sshd needs a login user). Create it with: bash hack/setup-host.sh`,
    );
  }
  return {
    name: TEST_ACCOUNT,
    uid: Number(fields[2]),
    gid: Number(fields[3]),
    home: fields[5] ?? '/',
    switchUser: true,
  };
}

/** spawn() options that run a child as the host user (no-op when we are not root). */
export function asUser(user: HostUser): { uid?: number; gid?: number } {
  return user.switchUser ? { uid: user.uid, gid: user.gid } : {};
}
