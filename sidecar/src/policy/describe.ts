import { describeIdentity } from '../identity/identity.js';
import type { Identity, Operation } from './types.js';

// Phrases for decision reasons. They never include command arguments or SQL text: those can carry
// credentials, and reasons are shown to agents and recorded verbatim.

function listShort(items: readonly string[], max = 5): string {
  if (items.length <= max) return items.join(', ');
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
}

/** "alice via shop/orders-agent (groups: oncall)". */
export function describeWho(identity: Identity): string {
  const groups =
    Array.isArray(identity.groups) && identity.groups.length > 0
      ? ` (groups: ${listShort(identity.groups)})`
      : '';
  return `${describeIdentity(identity)}${groups}`;
}

/** "postgres write statement on public.orders", "ssh exec of systemctl", "kubernetes delete apps/deployments web in namespace shop". */
export function describeOperation(op: Operation): string {
  switch (op.type) {
    case 'postgres': {
      const classes = (op.classes ?? []).filter((c) => c !== 'session');
      const kind =
        classes.length > 0 ? classes.join('+') : (op.classes ?? []).length > 0 ? 'session' : 'unclassified';
      const tables = op.tables ?? [];
      return `postgres ${kind} statement${tables.length > 0 ? ` on ${listShort(tables)}` : ''}`;
    }
    case 'ssh': {
      if (op.operation === 'exec') {
        const program = (op.command ?? '').trim().split(/\s+/, 1)[0] ?? '';
        return program ? `ssh exec of ${program.slice(0, 64)}` : 'ssh exec';
      }
      if (op.operation === 'port-forward')
        return `ssh port-forward${op.target ? ` to ${op.target.slice(0, 261)}` : ''}`;
      return `ssh ${String(op.operation).slice(0, 32)}`;
    }
    case 'kubernetes': {
      const res = `${op.apiGroup ? `${op.apiGroup}/` : ''}${op.resource}${op.subresource ? `/${op.subresource}` : ''}`;
      const name = op.name ? ` ${op.name}` : '';
      const where = op.namespace ? ` in namespace ${op.namespace}` : ' (cluster-scoped)';
      return `kubernetes ${op.verb} ${res}${name}${where}`;
    }
    default:
      return `${String((op as { type?: unknown }).type).slice(0, 32)} operation`;
  }
}
