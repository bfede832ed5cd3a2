import type { SessionPipeline } from '../../pipeline/session-pipeline.js';

/** Longest that results of one prepared statement are summed before they are recorded. */
const RESULT_COALESCE_MS = 1_000;

interface Coalesced {
  statement: string;
  since: number;
  executions: number;
  rows: number;
  bytes: number;
  masked: number;
  command?: string;
}

/**
 * Counts what the current result sent to the agent and records it when the result completes.
 * The counters are plain fields: the DataRow path bumps them per row.
 */
export class ResultRecording {
  rows = 0;
  bytes = 0;
  masked = 0;
  private coalesced?: Coalesced;

  constructor(private readonly pipeline: SessionPipeline<unknown>) {}

  /**
   * Records the result that just completed. Results of repeated executions of one prepared
   * statement (the extended-protocol hot path: Bind/Execute/Sync per transaction) are summed into
   * one event, written when another statement starts, an error happens, the session ends, or after
   * RESULT_COALESCE_MS — recording each execution cost a third of the gateway's throughput. The
   * statement and its decision were recorded, unaggregated, when it was parsed.
   */
  flush(command: string | undefined, error?: string, statement?: string): void {
    const r = { rows: this.rows, bytes: this.bytes, masked: this.masked };
    this.rows = 0;
    this.bytes = 0;
    this.masked = 0;
    if (!(r.rows || r.bytes || command || error)) return;
    const agg = this.coalesced;
    if (
      statement !== undefined &&
      !error &&
      agg &&
      agg.statement === statement &&
      Date.now() - agg.since < RESULT_COALESCE_MS
    ) {
      agg.rows += r.rows;
      agg.bytes += r.bytes;
      agg.masked += r.masked;
      agg.executions++;
      agg.command = command;
      return;
    }
    this.flushCoalesced();
    if (statement !== undefined && !error) {
      this.coalesced = { statement, since: Date.now(), executions: 1, command, ...r };
      // An idle session still gets its summed results written within the window.
      setTimeout(() => this.flushCoalesced(), RESULT_COALESCE_MS).unref();
      return;
    }
    this.pipeline.record('result', { rows: r.rows, bytes: r.bytes, maskedValues: r.masked, command, error });
  }

  /** Writes the summed results, if any (before the next statement is recorded, and at the end). */
  flushCoalesced(): void {
    const agg = this.coalesced;
    if (!agg) return;
    this.coalesced = undefined;
    this.pipeline.record('result', {
      rows: agg.rows,
      bytes: agg.bytes,
      maskedValues: agg.masked,
      command: agg.command,
      ...(agg.executions > 1 ? { executions: agg.executions } : {}),
    });
  }
}
