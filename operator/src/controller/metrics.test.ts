import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createControllerMetrics } from './metrics.js';

describe('createControllerMetrics', () => {
  it('registers chaperone_operator_* metrics and reuses them on a second call with the same Registry', async () => {
    const registry = new Registry();
    const a = createControllerMetrics(registry);
    const b = createControllerMetrics(registry);
    expect(b.reconcileTotal).toBe(a.reconcileTotal);
    a.reconcileTotal.inc({ kind: 'Connection', result: 'success' });
    b.reconcileTotal.inc({ kind: 'Connection', result: 'success' });
    a.leader.set(1);
    const text = await registry.metrics();
    expect(text).toContain('chaperone_operator_reconcile_total{kind="Connection",result="success"} 2');
    expect(text).toContain('chaperone_operator_leader 1');
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
    expect(names.every((n) => n.startsWith('chaperone_operator_'))).toBe(true);
    expect(names).toHaveLength(8);
  });
});
