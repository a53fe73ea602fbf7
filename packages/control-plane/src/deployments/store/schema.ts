// The deployments table (migrations 400+). A deployment is a lease (the market's table: periods, locks,
// renewal, settlement) plus what its node's launcher runs for it. The env is stored only as the client's HPKE
// ciphertext sealed to the launcher's attested key.

export type DeploymentState = 'starting' | 'running' | 'updating' | 'stopping' | 'stopped' | 'failed';

export interface DeploymentsTable {
  id: string;
  user_id: string;
  app: string;
  lease_id: string;
  node_id: string;
  image: string;
  /** JSON array of arguments, or null for the image's CMD. */
  command: string | null;
  port: number;
  vcpus: number;
  memory_mib: number;
  sealed_env: string | null;
  env_key: string | null;
  state: DeploymentState;
  reason: string;
  /** The workload that serves (or is starting to): `{id}-{generation}`. */
  generation: number;
  /** During an update: the generation still serving until the new one is routable. */
  retiring_generation: number | null;
  /** During an update: the image, sealed env and its key the serving (retiring) generation runs. */
  retiring_image: string | null;
  retiring_sealed_env: string | null;
  retiring_env_key: string | null;
  image_id: string | null;
  image_digest: string | null;
  created_ms: number;
  updated_ms: number;
}

export interface DeploymentsDatabase {
  deployments: DeploymentsTable;
}
