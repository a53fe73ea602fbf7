export type {
  ContainerRuntime,
  Workload,
  WorkloadResult,
  WorkloadState,
  ImageRef,
  LogStream,
  OutputFile,
} from './runtime.js';
export { WorkloadSpec, parseWorkloadSpec, type WorkloadSpecInput, type WorkloadKind } from './spec.js';
export { RuntimeError, type RuntimeErrorCode } from './errors.js';
export { loadLauncherConfig, LauncherConfigError, type LauncherConfig } from './config.js';
export { CapacityLedger, detectCapacity, type Capacity, type CapacitySnapshot } from './capacity.js';
export { outcome, type ExitFacts, type Outcome } from './outcome.js';
export { PodmanRuntime, type PodmanRuntimeOptions } from './podman/runtime.js';
export { PodmanCli } from './podman/cli.js';
export { runArgs, envFile, containerName, PRIVATE_NETWORK } from './podman/args.js';
export * from './limits.js';
export { loadLauncherOpsConfig, launcherMetrics, serveLauncherOps, type LauncherOpsConfig } from './ops.js';
export { LauncherNode, type LauncherNodeOptions } from './node/node.js';
export { LauncherJobs, AssignmentRefused } from './node/jobs.js';
