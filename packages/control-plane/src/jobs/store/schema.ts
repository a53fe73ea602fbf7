// The jobs table (migrations 300+). Money columns are micro-USD integers (≤ 2^53 − 1); times are ms since the
// epoch. Secrets never reach a row: the env is stored as the client's HPKE ciphertext (sealed to the launcher's
// attested key) and the result as ciphertext sealed to the client's key.
import type { JobState } from '../state.js';

export interface JobsTable {
  id: string;
  user_id: string;
  node_id: string;
  provider: string;
  /** The image as the user named it; `image_id` / `image_digest` are what the launcher reports it ran. */
  image: string;
  /** JSON array of arguments, or null for the image's CMD. */
  command: string | null;
  vcpus: number;
  memory_mib: number;
  max_runtime_ms: number;
  network: number;
  /** The node's price (micro-USD per vCPU-hour) when the job was placed: what settles uses it. */
  price_micro: number;
  lock_micro: number;
  /** base64 of the sealed env (HPKE to `env_key`), or null for a job without env. */
  sealed_env: string | null;
  /** Hex X25519 key of the launcher the env is sealed to. */
  env_key: string | null;
  /** Hex X25519 key of the client: results and logs are sealed to it. */
  result_key: string;
  state: JobState;
  reason: string;
  /** JSON array of JobStep: every state with its time and reason. */
  history: string;
  /** Per node, increasing: the launcher labels the container with it. */
  assignment_seq: number;
  cancel_requested: number;
  image_id: string | null;
  image_digest: string | null;
  exit_code: number | null;
  started_ms: number | null;
  finished_ms: number | null;
  billed_vcpu_ms: number | null;
  settled_micro: number | null;
  refunded_micro: number | null;
  /** base64 of the result sealed to `result_key`. */
  result_sealed: string | null;
  /** The launcher's signed usage record (JSON with its signature). */
  usage_record: string | null;
  created_ms: number;
  updated_ms: number;
  /** 1 when the user asked for one retry on another node should the node be lost mid-job. */
  retry_on_node_loss: number;
  /** 1, or 2 once retried: the lock, settle and refund transfers of attempt n > 1 carry `:n`. */
  attempt: number;
  /** 1 while a retried job waits for the client to seal its env to the new launcher (`env_key`). */
  env_pending: number;
  /** JSON array of JobAttempt: the earlier attempts, each refunded in full. */
  attempts: string | null;
  /** The file the job writes in /ee/output/, returned in its sealed result; null for none. */
  output_file: string | null;
}

export interface JobsDatabase {
  jobs: JobsTable;
}
