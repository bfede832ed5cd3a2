import type { AccessPolicy, Connection } from '@chaperone/api';
import type { Identity } from '../../identity/identity.js';
import { compileMasking, type MaskingPlan } from '../../masking/index.js';
import { segmentGlob } from '../../policy/glob.js';
import {
  type ApplicablePolicies,
  compilePolicies,
  type PolicyDecision,
  SEVERITY,
} from '../../policy/index.js';
import type { ColumnOrigin } from './column-catalog.js';
import type { CopyFormat } from './masking/copy-masker.js';
import {
  analyzeMasking,
  classifySql,
  isMaskableLeak,
  type Leak,
  type SqlAnalysis,
  type StatementAnalysis,
} from './sql/index.js';
import type {
  CatalogFacts,
  CatalogQuestions,
  CopyMasking,
  GuardVerdict,
  OperationSummary,
  ServerError,
  SessionPolicy,
  SessionPolicyFactory,
} from './statement-guard.js';

const DEFAULT_SCHEMA = 'public';

// Agents repeat statements (ORMs, polling loops, prepared texts). Parsing costs 50–200 µs, so the
// analysis of recent texts is kept — it is a pure function of the text. Bounded in entries and size.
const CACHE_ENTRIES = 1024;
const CACHE_MAX_TEXT = 8 * 1024;
const analysisCache = new Map<string, SqlAnalysis>();

function classifyCached(sql: string): SqlAnalysis {
  const hit = analysisCache.get(sql);
  if (hit) {
    // Re-insert to mark it most recently used (Map keeps insertion order).
    analysisCache.delete(sql);
    analysisCache.set(sql, hit);
    return hit;
  }
  const analysis = classifySql(sql);
  if (sql.length <= CACHE_MAX_TEXT) {
    analysisCache.set(sql, analysis);
    if (analysisCache.size > CACHE_ENTRIES) analysisCache.delete(analysisCache.keys().next().value as string);
  }
  return analysis;
}

const qualified = (st: StatementAnalysis) => st.tables.map((t) => `${t.schema ?? DEFAULT_SCHEMA}.${t.name}`);

/**
 * The PostgreSQL side of policy: classify each statement with the real parser, ask the policy
 * engine, then look for ways the statement could reveal a masked column that row masking cannot
 * see, and let the masking plan's `leakage` setting turn those into deny or approve.
 * A query string is judged statement by statement; the most severe verdict wins for the string.
 */
export function postgresPolicyFactory(
  connection: Connection,
  policies: AccessPolicy[],
): SessionPolicyFactory {
  const engine = compilePolicies(policies, connection);
  return (identity: Identity) => {
    const view = engine.forIdentity(identity);
    if ('refused' in view) return { refused: view.refused };
    const compiled = compileMasking(view.policies);
    if (!compiled.ok) {
      return {
        refused: `the masking rules of ${view.names.join(', ')} are invalid: ${compiled.errors.join('; ')}`,
      };
    }
    const plan = compiled.plan;
    // PREPARE/EXECUTE in SQL: what each prepared name stands for, per session.
    const prepared = new Map<string, StatementAnalysis>();

    const judge = (
      st: StatementAnalysis,
    ): { verdict: GuardVerdict; copy?: CopyMasking; ask?: CatalogQuestions } => {
      if (st.prepared) prepared.set(st.prepared.name, st.prepared.statement);
      const target = st.executes !== undefined ? prepared.get(st.executes) : st;
      if (!target) {
        const reason = `EXECUTE of prepared statement ${st.executes}, which this session did not PREPARE through the gateway`;
        return { verdict: { action: 'deny', reason, rule: '(gateway)', summary: summarize([st]) } };
      }
      const decision = view.decide({
        type: 'postgres',
        classes: target.classes,
        tables: qualified(target),
        risks: target.risks,
      });
      const verdict = toVerdict(decision, st);
      if (verdict.action === 'deny' || !plan.hasColumnRules) return { verdict };
      const analysis = analyzeMasking(target, plan.columnRules, { defaultSchemas: [DEFAULT_SCHEMA] });
      const leaks = analysis.leaks;
      const copy = copyMasking(target, leaks, plan);
      const unmaskable = leaks.find((l) => !isMaskableLeak(l.how) || (l.how === 'copy' && !copy));
      const ask = {
        relations: analysis.relations.map((r) => (r.schema ? `${r.schema}.${r.name}` : r.name)),
        functions: analysis.untrustedFunctions,
      };
      if (!unmaskable) return { verdict, copy, ask };
      return {
        verdict: escalateForLeak(verdict, `${unmaskable.detail} (${unmaskable.how})`, plan.leakage, view),
      };
    };

    const check = (sql: string): GuardVerdict => {
      const analysis = classifyCached(sql);
      // Only blanks, comments and semicolons: nothing runs, and the server answers
      // EmptyQueryResponse (drivers' pings and connection checks send these).
      if (analysis.error?.kind === 'empty')
        return { action: 'allow', rule: '(empty query)', summary: unparsedSummary(sql) };
      if (analysis.error || analysis.statements.length === 0) {
        const reason = `the statement could not be parsed (${analysis.error?.message ?? 'empty'}), so policy cannot judge it`;
        const summary = unparsedSummary(sql);
        const e = analysis.error;
        if (e?.kind !== 'syntax') return { action: 'deny', reason, rule: '(parser)', summary };
        // A syntax error is answered as PostgreSQL answers it (same parser, same words): drivers
        // and people read 42601 and its position, not a policy refusal.
        const serverError: ServerError = { code: '42601', message: e.message };
        if (e.position !== undefined) serverError.position = [...sql.slice(0, e.position)].length + 1;
        return { action: 'deny', reason, rule: '(parser)', summary, serverError };
      }
      let worst: GuardVerdict | undefined;
      let copy: CopyMasking | undefined;
      const ask: CatalogQuestions = { relations: [], functions: [] };
      for (const st of analysis.statements) {
        const judged = judge(st);
        copy ??= judged.copy;
        ask.relations.push(...(judged.ask?.relations ?? []));
        ask.functions.push(...(judged.ask?.functions ?? []));
        if (!worst || SEVERITY[judged.verdict.action] > SEVERITY[worst.action]) worst = judged.verdict;
      }
      const verdict = { ...(worst as GuardVerdict), summary: summarize(analysis.statements) };
      if (verdict.action === 'deny') return verdict;
      const questions = ask.relations.length || ask.functions.length ? ask : undefined;
      return { ...verdict, ...(copy ? { copy } : {}), ...(questions ? { ask: questions } : {}) };
    };

    const review = (verdict: GuardVerdict, facts: CatalogFacts): GuardVerdict => {
      if (verdict.action === 'deny') return verdict;
      const leak = catalogLeak(facts, plan);
      return leak ? escalateForLeak(verdict, leak, plan.leakage, view) : verdict;
    };

    const policy: SessionPolicy = { check, review, masking: plan };
    return policy;
  };
}

/**
 * What only the catalog shows: a view (or a view over views) whose definition reads a masked
 * column reports its own OID as the origin, so column rules would not match it; an inheritance
 * child or partition of a masked table likewise; a user-defined function can read masked tables
 * and return their values without any origin. Conservative: a function whose body names a table
 * with masked columns, or that is not SQL / PL/pgSQL (its body cannot be read), counts.
 */
function catalogLeak(facts: CatalogFacts, plan: MaskingPlan): string | undefined {
  const masked = (o: ColumnOrigin) =>
    o.column === '*'
      ? plan.columnRules.some((r) => globMatch(r.schema, o.schema) && globMatch(r.table, o.table))
      : plan.strategyForColumn(o.schema, o.table, o.column) !== undefined;
  for (const r of facts.relations) {
    if (!r.exists) continue;
    const hit = r.exposes.find(masked);
    if (hit) {
      const what = r.relkind === 'v' || r.relkind === 'm' ? 'view' : 'child table';
      return `${r.schema}.${r.name} is a ${what} over the masked ${hit.column === '*' ? `table ${hit.schema}.${hit.table}` : `column ${hit.schema}.${hit.table}.${hit.column}`}; its columns carry its own origin, so column rules would not apply (${what})`;
    }
  }
  const tables = [...new Set(plan.columnRules.map((r) => r.table.toLowerCase()))];
  for (const f of facts.functions) {
    if (!f.userDefined) continue;
    const opaque = f.languages.some((l) => l !== 'sql' && l !== 'plpgsql') || f.languages.length === 0;
    const mentions = tables.some(
      (t) => t.includes('*') || f.sources.some((src) => src.toLowerCase().includes(t)),
    );
    if (opaque || mentions) {
      return `function ${f.name} is user-defined${opaque ? ' in a language whose body cannot be inspected' : ' and reads a table with masked columns'}; its results have no column origin (function)`;
    }
  }
  return undefined;
}

function globMatch(glob: string, value: string): boolean {
  return segmentGlob(glob, 'i').test(value);
}

/**
 * COPY … TO sends rows without a RowDescription, so masking goes by column position: from the
 * statement's column list, or — for `COPY table TO` — from the table's columns in the catalog
 * (resolved by the session). `COPY (SELECT * …) TO` has no positions we can trust: not maskable.
 */
function copyMasking(st: StatementAnalysis, leaks: Leak[], plan: MaskingPlan): CopyMasking | undefined {
  const copyLeaks = leaks.filter((l) => l.how === 'copy');
  if (copyLeaks.length === 0) return undefined;
  const format = copyFormat(st);
  if (!format) return undefined;
  const columns: CopyMasking['columns'] = [];
  for (const l of copyLeaks) {
    const [schema = '', table = '', column = ''] = l.column.split('.');
    const strategy = plan.strategyForColumn(schema, table, column) ?? 'redact';
    if (l.outputColumn !== undefined) columns.push({ position: l.outputColumn, strategy });
  }
  if (columns.length === copyLeaks.length) return { columns, format };
  const node = st.tree as { CopyStmt?: { query?: unknown; attlist?: unknown[] } } | undefined;
  const whole = node?.CopyStmt && node.CopyStmt.query === undefined && !node.CopyStmt.attlist?.length;
  const table = qualified(st)[0];
  return whole && table ? { columns: [], table, format } : undefined;
}

/** COPY's output format, when it is one we can mask cell by cell (text or plain CSV). */
export function copyFormat(st: StatementAnalysis): CopyFormat | undefined {
  const node = st.tree as
    | { CopyStmt?: { options?: Array<{ DefElem?: { defname?: string; arg?: unknown } }> } }
    | undefined;
  const opts = new Map<string, string>();
  for (const o of node?.CopyStmt?.options ?? []) {
    const d = o.DefElem;
    if (!d?.defname) continue;
    const arg = d.arg as { String?: { sval?: string } } | undefined;
    opts.set(d.defname, arg?.String?.sval ?? 'true');
  }
  const kind = opts.get('format') ?? (opts.get('csv') ? 'csv' : 'text');
  // A custom quote, escape or force-quote changes the CSV grammar; binary has no cells to mask.
  if (kind === 'binary' || opts.has('quote') || opts.has('escape') || opts.has('force_quote'))
    return undefined;
  const delimiter = opts.get('delimiter') ?? (kind === 'csv' ? ',' : '\t');
  if (kind === 'csv') return { kind: 'csv', delimiter, nullString: opts.get('null') ?? '' };
  if (kind === 'text' && !opts.has('null')) return { kind: 'text', delimiter };
  return undefined;
}

function toVerdict(d: PolicyDecision, st: StatementAnalysis): GuardVerdict {
  const summary = summarize([st]);
  const rule = d.policy
    ? `${d.policy}/${d.guardrail ? `guardrail:${d.guardrail}` : d.rule}`
    : (d.rule ?? '(no rule)');
  if (d.action === 'allow') return { action: 'allow', rule, summary };
  if (d.action === 'deny') return { action: 'deny', reason: d.reason, rule, summary };
  return {
    action: 'approve',
    reason: d.reason,
    rule,
    policy: d.policy,
    approvers: d.approvers,
    timeoutMs: d.timeoutMs,
    summary,
  };
}

/**
 * A statement that could reveal a masked column past row masking: `leakage: deny` refuses it;
 * `leakage: approve` needs an approver of the policy that allowed it (or keeps the approval it
 * already needed, with the reason added).
 */
function escalateForLeak(
  v: Exclude<GuardVerdict, { action: 'deny' }>,
  leak: string,
  leakage: 'deny' | 'approve',
  view: ApplicablePolicies,
): GuardVerdict {
  const reason = `the query could reveal masked data: ${leak}`;
  if (leakage === 'deny') return { action: 'deny', reason, rule: `${v.rule}+masking`, summary: v.summary };
  if (v.action === 'approve') return { ...v, reason: `${v.reason}; ${reason}` };
  const policyName = v.rule.split('/')[0] ?? '';
  const approval = view.approvalOf(policyName);
  if (!approval || (!approval.approvers.groups.length && !approval.approvers.users.length)) {
    return {
      action: 'deny',
      reason: `${reason}, and policy ${policyName} names no approvers`,
      rule: `${v.rule}+masking`,
      summary: v.summary,
    };
  }
  return {
    action: 'approve',
    reason,
    rule: `${v.rule}+masking`,
    policy: policyName,
    approvers: approval.approvers,
    timeoutMs: approval.timeoutMs,
    summary: v.summary,
  };
}

function summarize(statements: StatementAnalysis[]): OperationSummary {
  const uniq = (xs: string[]) => [...new Set(xs)];
  return {
    text: statements.map((s) => s.normalized).join('; '),
    fingerprint: statements.map((s) => s.fingerprint).join(','),
    classes: uniq(statements.flatMap((s) => s.classes)).sort(),
    tables: uniq(statements.flatMap(qualified)).sort(),
    risks: uniq(statements.flatMap((s) => s.risks.map((r) => r.reason))),
  };
}

function unparsedSummary(sql: string): OperationSummary {
  // Unparsed text may hold literals (secrets); record only its size.
  return {
    text: `(unparsable statement, ${sql.length} characters)`,
    fingerprint: '',
    classes: [],
    tables: [],
    risks: [],
  };
}
