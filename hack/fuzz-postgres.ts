// `make fuzz`: a long protocol-fuzzing campaign against the sidecar's PostgreSQL gateway (real
// PostgreSQL, the built sidecar as its own process). FRAMES (default 1,000,000), SEED and
// MINUTES (default 10) tune it. Exits non-zero when the sidecar crashed, hung, or kept what it
// should have released; the seed replays the run.
import { runFuzzCampaign } from '@chaperone/testkit';

const frames = Number(process.env.FRAMES ?? 1_000_000);
const seed = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
const minutes = Number(process.env.MINUTES ?? 10);
console.log(
  `[fuzz] seed ${seed}: ${frames} frames at most, ${minutes} min at most (replay with SEED=${seed})`,
);
const r = await runFuzzCampaign({
  frames,
  seed,
  deadlineMs: minutes * 60_000,
  log: (line) => console.log(`[fuzz] ${line}`),
});
const rep = r.report;
console.log(
  [
    `[fuzz] ${rep.connections} connections, ${Math.round(rep.frames)} frames, ${(rep.bytesSent / 2 ** 20).toFixed(0)} MiB sent in ${(rep.durationMs / 1000).toFixed(0)} s`,
    `[fuzz] target closed ${rep.closedByTarget} connections; ${rep.connectErrors} connect errors`,
    `[fuzz] error codes: ${Object.entries(rep.errorCodes)
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c}×${n}`)
      .join(' ')}`,
    `[fuzz] watchdog: ${rep.watchdog.queries} queries, ${rep.watchdog.failures} failures, max latency ${rep.watchdog.maxLatencyMs} ms`,
    `[fuzz] fds ${r.fdsBefore} -> ${r.fdsAfter}; RSS ${r.rssBeforeMb.toFixed(0)} MB, peak ${r.rssPeakMb.toFixed(0)} MB, after ${r.rssAfterMb.toFixed(0)} MB`,
  ].join('\n'),
);
if (r.problems.length) {
  console.log(
    `[fuzz] FAILED (seed ${seed}):\n  ${r.problems.join('\n  ')}\n--- sidecar log tail ---\n${r.stderrTail}`,
  );
  process.exit(1);
}
console.log('[fuzz] passed: 0 crashes, 0 hangs, descriptors and memory back to baseline');
