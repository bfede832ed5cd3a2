// One fuzz campaign end to end: real PostgreSQL, the sidecar as its own process, the fuzzer with
// its watchdog, then the verdict: the process is up, the watchdog was always served, and file
// descriptors and memory went back to where they were. Used by `make fuzz` and by a short run in
// `make test` (e2e/src/postgres-fuzz.int.test.ts).
import { startPostgres } from '../postgres.js';
import { type FuzzReport, fuzzPostgres } from './driver.js';
import { seedFuzzDatabase, startFuzzTarget } from './target.js';

export interface CampaignOptions {
  frames: number;
  seed: number;
  deadlineMs: number;
  concurrency?: number;
  log?: (line: string) => void;
}

export interface CampaignResult {
  report: FuzzReport;
  fdsBefore: number;
  fdsAfter: number;
  rssBeforeMb: number;
  rssPeakMb: number;
  rssAfterMb: number;
  /** Empty when the target passed: each entry says what went wrong. */
  problems: string[];
  stderrTail: string;
}

/** Extra descriptors tolerated after the run (a spool segment rolled over, a log file). */
const FD_SLACK = 4;
/** Memory the process may keep after the run (V8 keeps heap it grew into; a leak grows without bound). */
const RSS_SLACK_MB = 120;

export async function runFuzzCampaign(opts: CampaignOptions): Promise<CampaignResult> {
  const log = opts.log ?? (() => {});
  const pg = await startPostgres();
  try {
    await seedFuzzDatabase(pg);
    const target = await startFuzzTarget(pg);
    try {
      return await campaign(target, opts, log);
    } finally {
      await target.stop();
    }
  } finally {
    await pg.stop();
  }
}

async function campaign(
  target: Awaited<ReturnType<typeof startFuzzTarget>>,
  opts: CampaignOptions,
  log: (line: string) => void,
): Promise<CampaignResult> {
  // Warm up: one real session loads the parser and the catalog connection.
  await fuzzPostgres({ ...baseOptions(target.port, opts), frames: 1, concurrency: 1 });
  await settle(() => target.fds(), 5_000);
  const fdsBefore = target.fds();
  const rssBeforeMb = target.rssMb();
  let rssPeakMb = rssBeforeMb;
  const sampler = setInterval(() => {
    if (target.alive()) rssPeakMb = Math.max(rssPeakMb, target.rssMb());
  }, 200);
  const report = await fuzzPostgres({
    ...baseOptions(target.port, opts),
    onProgress: (r) =>
      log(
        `${r.connections} connections, ${Math.round(r.frames)} frames, ${Math.round(r.durationMs / 1000)} s`,
      ),
  }).finally(() => clearInterval(sampler));
  const problems: string[] = [];
  if (!target.alive()) problems.push('the sidecar process exited during the run');
  let fdsAfter = -1;
  let rssAfterMb = -1;
  if (target.alive()) {
    fdsAfter = await settle(() => target.fds(), 15_000, fdsBefore + FD_SLACK);
    rssAfterMb = target.rssMb();
    if (fdsAfter > fdsBefore + FD_SLACK) {
      problems.push(
        `open file descriptors did not return to baseline: ${fdsBefore} before, ${fdsAfter} after`,
      );
    }
    if (rssAfterMb > rssBeforeMb + RSS_SLACK_MB) {
      problems.push(
        `RSS grew from ${rssBeforeMb.toFixed(0)} MB to ${rssAfterMb.toFixed(0)} MB and stayed there`,
      );
    }
    // A fresh, well-behaved session must still get in and be served.
    const after = await fuzzPostgres({ ...baseOptions(target.port, opts), frames: 1, concurrency: 1 });
    if (after.watchdog.failures > 0)
      problems.push(`a new session after the run failed: ${after.watchdog.lastError}`);
  }
  if (report.watchdog.failures > 0) {
    problems.push(
      `the watchdog session failed ${report.watchdog.failures} times (last: ${report.watchdog.lastError})`,
    );
  }
  if (report.watchdog.queries === 0) problems.push('the watchdog session never got an answer');
  // An internal error (XX000) is an exception the gateway did not expect: a bug, even if handled.
  const internal = target.errors();
  if (internal.length) problems.push(`${internal.length} internal errors, first: ${internal[0]}`);
  return {
    report,
    fdsBefore,
    fdsAfter,
    rssBeforeMb,
    rssPeakMb,
    rssAfterMb,
    problems,
    stderrTail: target.stderr().slice(-4_000),
  };
}

function baseOptions(port: number, opts: CampaignOptions) {
  return {
    host: '127.0.0.1',
    port,
    seed: opts.seed,
    frames: opts.frames,
    deadlineMs: opts.deadlineMs,
    concurrency: opts.concurrency ?? 32,
    watchdog: { user: 'agent', database: 'orders' },
  };
}

/** Polls until value() is at most `target` (or stops changing), up to ms; returns the last value. */
async function settle(value: () => number, ms: number, target = -Infinity): Promise<number> {
  const deadline = Date.now() + ms;
  let last = value();
  let stableSince = Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    const v = value();
    if (v <= target) return v;
    if (v !== last) {
      last = v;
      stableSince = Date.now();
    } else if (target === -Infinity && Date.now() - stableSince > 1_000) return v;
  }
  return value();
}
