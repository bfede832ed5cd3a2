import type { AccessPolicy, MaskingStrategy, SecretDataMasking } from '@chaperone/api';
import { MASKING_DEFAULTS } from '../policy/defaults.js';
import { isLiteralGlob, segmentGlob } from '../policy/glob.js';
import {
  BUILTIN_DETECTORS,
  compileCustomPattern,
  isBuiltinDetector,
  MAX_SCAN_CHARS,
  type TextTest,
} from './value-detectors.js';

// Masking is the union of every applicable policy's rules and detectors: a value one policy masks is
// masked. Where several rules or detectors hit, the strongest strategy wins.

/** null > redact > hash > partial: how much of the value survives, least first. */
export const STRATEGY_STRENGTH: Readonly<Record<MaskingStrategy, number>> = Object.freeze({
  null: 4,
  redact: 3,
  hash: 2,
  partial: 1,
});

function isStrategy(s: unknown): s is MaskingStrategy {
  return typeof s === 'string' && Object.hasOwn(STRATEGY_STRENGTH, s);
}

function stronger(
  a: MaskingStrategy | undefined,
  b: MaskingStrategy | undefined,
): MaskingStrategy | undefined {
  if (!a) return b;
  if (!b) return a;
  return STRATEGY_STRENGTH[b] > STRATEGY_STRENGTH[a] ? b : a;
}

/** One column rule as written ('*' and '?' kept), for the SQL leak analyser. */
export interface ColumnRule {
  schema: string;
  table: string;
  column: string;
  strategy: MaskingStrategy;
}

export interface DetectorMatch {
  /** The built-in type, or the custom detector's name: safe to record instead of the value. */
  detector: string;
  strategy: MaskingStrategy;
}

export interface MaskingPlan {
  readonly hasColumnRules: boolean;
  readonly hasDetectors: boolean;
  /** What happens to queries that could reveal a masked column past the column rules. */
  readonly leakage: 'deny' | 'approve';
  readonly kubernetesSecretData: SecretDataMasking;
  readonly columnRules: readonly ColumnRule[];
  /** The detectors, strongest strategy first (the order detect() tries them). */
  readonly detectors: readonly { detector: string; strategy: MaskingStrategy }[];
  /** The strongest strategy of the column rules naming this column (case-insensitive), or undefined. */
  strategyForColumn(schema: string, table: string, column: string): MaskingStrategy | undefined;
  /** The strongest strategy of the detectors that find something in the first MAX_SCAN_CHARS of text. */
  detect(text: string): MaskingStrategy | undefined;
  /** Like detect(), also naming the detector. */
  match(text: string): DetectorMatch | undefined;
}

/**
 * The part of a plan a protocol's result masker consults per value: column rules by origin, and
 * detectors for values without one.
 */
export type ResultMasking = Pick<
  MaskingPlan,
  'hasColumnRules' | 'hasDetectors' | 'strategyForColumn' | 'detect'
>;

export type MaskingCompileResult = { ok: true; plan: MaskingPlan } | { ok: false; errors: string[] };

interface GlobColumnRule {
  schema: RegExp;
  table: RegExp;
  column: RegExp;
  strategy: MaskingStrategy;
}

interface CompiledDetector {
  detector: string;
  strategy: MaskingStrategy;
  test: TextTest;
}

const COLUMN_CACHE_LIMIT = 4096;

/** Compiles the masking of the applicable policies. Problems (bad column, invalid regex …) are returned, never thrown later. */
export function compileMasking(policies: readonly AccessPolicy[]): MaskingCompileResult {
  const errors: string[] = [];
  const columns = new Map<string, ColumnRule>();
  const detectors = new Map<string, CompiledDetector>();
  let leakage: 'deny' | 'approve' = policies.length === 0 ? 'deny' : 'approve';
  let secretData: SecretDataMasking = policies.length === 0 ? 'redact' : 'allow';

  for (const policy of policies) {
    const name = policy?.metadata?.name ?? '(unnamed)';
    const masking = policy?.spec?.masking ?? {};
    // Fail closed: anything but an explicit 'approve' / 'allow' is the restrictive default.
    if ((masking.leakage ?? MASKING_DEFAULTS.leakage) !== 'approve') leakage = 'deny';
    if ((masking.kubernetes?.secretData ?? MASKING_DEFAULTS.secretData) !== 'allow') secretData = 'redact';

    for (const [i, c] of (masking.columns ?? []).entries()) {
      const where = `AccessPolicy ${name}: masking.columns[${i}]`;
      const strategy = c?.strategy ?? MASKING_DEFAULTS.strategy;
      const parts = typeof c?.column === 'string' ? c.column.split('.') : [];
      if (parts.length !== 3 || parts.some((p) => p.length === 0)) {
        errors.push(`${where}: column ${JSON.stringify(c?.column)} is not 'schema.table.column'`);
        continue;
      }
      if (!isStrategy(strategy)) {
        errors.push(
          `${where}: unknown strategy ${JSON.stringify(strategy)}; use redact, partial, hash or null`,
        );
        continue;
      }
      const [schema = '', table = '', column = ''] = parts;
      const key = c.column.toLowerCase();
      const prev = columns.get(key);
      columns.set(key, { schema, table, column, strategy: stronger(prev?.strategy, strategy) ?? strategy });
    }

    for (const [i, d] of (masking.detectors ?? []).entries()) {
      const type = d?.type;
      const label = type === 'custom' ? (d.name ?? 'custom') : String(type);
      const where = `AccessPolicy ${name}: masking.detectors[${i}] (${label})`;
      const strategy = d?.strategy ?? MASKING_DEFAULTS.strategy;
      if (!isStrategy(strategy)) {
        errors.push(
          `${where}: unknown strategy ${JSON.stringify(strategy)}; use redact, partial, hash or null`,
        );
        continue;
      }
      if (isBuiltinDetector(type)) {
        const prev = detectors.get(type);
        detectors.set(type, {
          detector: type,
          strategy: stronger(prev?.strategy, strategy) ?? strategy,
          test: BUILTIN_DETECTORS[type],
        });
      } else if (type === 'custom') {
        if (!d.name) {
          errors.push(
            `${where}: a custom detector needs a name; it appears in recordings instead of the value`,
          );
          continue;
        }
        const compiled = compileCustomPattern(d.pattern);
        if ('error' in compiled) {
          errors.push(`${where}: ${compiled.error}`);
          continue;
        }
        const key = `custom\0${d.name}\0${d.pattern}`;
        const prev = detectors.get(key);
        detectors.set(key, {
          detector: d.name,
          strategy: stronger(prev?.strategy, strategy) ?? strategy,
          test: compiled.test,
        });
      } else {
        errors.push(`${where}: unknown detector type ${JSON.stringify(type)}`);
      }
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, plan: buildPlan([...columns.values()], [...detectors.values()], leakage, secretData) };
}

function buildPlan(
  columnRules: ColumnRule[],
  detectorList: CompiledDetector[],
  leakage: 'deny' | 'approve',
  kubernetesSecretData: SecretDataMasking,
): MaskingPlan {
  const literal = new Map<string, MaskingStrategy>();
  const globs: GlobColumnRule[] = [];
  for (const r of columnRules) {
    if (isLiteralGlob(r.schema) && isLiteralGlob(r.table) && isLiteralGlob(r.column)) {
      literal.set(columnKey(r.schema, r.table, r.column), r.strategy);
    } else {
      globs.push({
        schema: segmentGlob(r.schema, 'i'),
        table: segmentGlob(r.table, 'i'),
        column: segmentGlob(r.column, 'i'),
        strategy: r.strategy,
      });
    }
  }
  // Strongest first, so the first hit is the answer (stable sort keeps declaration order on ties).
  globs.sort((a, b) => STRATEGY_STRENGTH[b.strategy] - STRATEGY_STRENGTH[a.strategy]);
  const detectors = [...detectorList].sort(
    (a, b) => STRATEGY_STRENGTH[b.strategy] - STRATEGY_STRENGTH[a.strategy],
  );
  const cache = new Map<string, MaskingStrategy | null>();

  const strategyForColumn = (schema: string, table: string, column: string): MaskingStrategy | undefined => {
    const key = columnKey(schema, table, column);
    const cached = cache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    let best = literal.get(key);
    const glob = globs.find((g) => g.schema.test(schema) && g.table.test(table) && g.column.test(column));
    best = stronger(best, glob?.strategy);
    if (cache.size >= COLUMN_CACHE_LIMIT) cache.clear();
    cache.set(key, best ?? null);
    return best;
  };

  const match = (text: string): DetectorMatch | undefined => {
    if (typeof text !== 'string' || text.length === 0) return undefined;
    const scanned = text.length > MAX_SCAN_CHARS ? text.slice(0, MAX_SCAN_CHARS) : text;
    for (const d of detectors) {
      if (d.test(scanned)) return { detector: d.detector, strategy: d.strategy };
    }
    return undefined;
  };

  return {
    hasColumnRules: columnRules.length > 0,
    hasDetectors: detectors.length > 0,
    leakage,
    kubernetesSecretData,
    columnRules: columnRules.map((r) => ({ ...r })),
    detectors: detectors.map(({ detector, strategy }) => ({ detector, strategy })),
    strategyForColumn,
    detect: (text) => match(text)?.strategy,
    match,
  };
}

function columnKey(schema: string, table: string, column: string): string {
  return `${schema}\0${table}\0${column}`.toLowerCase();
}
