// Starts a standalone sidecar in this process for bench/pg-gateway.ts:
//   node --liftoff-only bench/sidecar-runner.ts CONFIG_DIR ADMIN_PORT on|off
// "off" runs without recording (to measure recording overhead); the CLI has no such mode.
import { join } from 'node:path';
import { jsonLog, runStandalone } from '@chaperone/sidecar';

const [configDir = '', adminPort = '0', recording = 'on'] = process.argv.slice(2);
const started = performance.now();
await runStandalone({
  configDir,
  serviceAccount: { namespace: 'default', name: 'bench' },
  recordingsDir: join(configDir, 'rec'),
  adminPort: Number(adminPort),
  benchmarkWithoutRecording: recording === 'off',
  log: (level, message, fields) => (level === 'info' ? undefined : jsonLog(level, message, fields)),
});
jsonLog('info', 'ready', { ms: Math.round(performance.now() - started) });
process.once('SIGTERM', () => process.exit(0));
