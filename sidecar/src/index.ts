// Public entry of @chaperone/sidecar: the two modes, for running the gateway inside another Node
// process (bench/ does). The product runs dist/cli.js; everything else under src/ is internal.
export { jsonLog, type Logger } from '@chaperone/api';
export { type InClusterOptions, type RunningInClusterSidecar, runInCluster } from './modes/in-cluster.js';
export { type RunningStandaloneSidecar, runStandalone, type StandaloneOptions } from './modes/standalone.js';
