// `npm start`, part two: a node launcher on the local sandbox network, when podman is here. Sets up what a
// provider and a user would (a provider account with a registered, staked node; a user with credits), kept in
// .easyenclave/launcher.json so a restart reuses them, builds the local busybox test image, and returns the
// launcher's environment and a working `ee jobs run` line. Without podman (or busybox-static for the image) it
// returns the reason it skipped, and `npm start` runs without a launcher.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Local price: $0.10 per vCPU-hour. */
const PRICE_MICRO = 100_000;
const NODE_VCPUS = 2;

async function api(base, admin, method, path, { token = admin, body } = {}) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: json ?? text };
}

function must(r, what) {
  if (r.status >= 300) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** A provider with a staked node and a user with credits, created once and kept (reused while the database is). */
async function marketParties(base, admin, file) {
  if (existsSync(file)) {
    const kept = JSON.parse(readFileSync(file, 'utf8'));
    const r = await api(base, admin, 'GET', `/v1/balances/${kept.user_id}`);
    if (r.status === 200) return kept;
  }
  const provider = must(
    await api(base, admin, 'POST', '/v1/accounts', { body: { kind: 'provider', name: 'local provider' } }),
    'provider account',
  );
  const user = must(
    await api(base, admin, 'POST', '/v1/accounts', { body: { kind: 'user', name: 'local user' } }),
    'user account',
  );
  for (const [who, amount] of [
    [provider.account_id, '$100'],
    [user.account_id, '$20'],
  ])
    must(
      await api(base, admin, 'POST', '/v1/credits/purchase', {
        body: { account: who, amount, payment_ref: `local-${who.slice(-12)}` },
      }),
      'credits',
    );
  const node = must(
    await api(base, admin, 'POST', '/v1/nodes/register', {
      token: provider.api_key,
      body: { region: 'local', tier: 'standard', vcpus: NODE_VCPUS, price_per_vcpu_hour_micro_usd: PRICE_MICRO },
    }),
    'node registration',
  );
  must(
    await api(base, admin, 'POST', `/v1/nodes/${node.node_id}/stake`, {
      token: provider.api_key,
      body: { amount_micro_usd: PRICE_MICRO * NODE_VCPUS * 24 },
    }),
    'stake',
  );
  const kept = { user_id: user.account_id, user_key: user.api_key, node_id: node.node_id, node_token: node.node_token };
  writeFileSync(file, JSON.stringify(kept), { mode: 0o600 });
  return kept;
}

/** → { env, image, user_key_file } to start `ee node run` with, or { skip: reason }. */
export async function prepareLauncher({ root, stateDir, api: base, adminToken, controlWs }) {
  const podman = process.env.EE_CONTAINER_RUNTIME || 'podman';
  const v = spawnSync(podman, ['version', '--format', '{{.Client.Version}}'], { encoding: 'utf8', timeout: 30_000 });
  if (v.status !== 0)
    return {
      skip:
        v.error !== undefined
          ? `${podman} is not installed (apt-get install podman runc slirp4netns busybox-static)`
          : `${podman} version failed: ${(v.stderr ?? '').trim().slice(0, 200)}`,
    };
  const testing = await import(join(root, 'packages/launcher/dist/testing/test-image.js'));
  const { PodmanCli } = await import(join(root, 'packages/launcher/dist/podman/cli.js'));
  if (!existsSync(testing.DEFAULT_BUSYBOX_PATH))
    return {
      skip: `no static busybox at ${testing.DEFAULT_BUSYBOX_PATH} for the test image (apt-get install busybox-static)`,
    };
  const podmanEnv = {
    EE_CONTAINER_RUNTIME: podman,
    EE_CONTAINER_GLOBAL_ARGS: process.env.EE_CONTAINER_GLOBAL_ARGS ?? testing.TEST_PODMAN_ENV.EE_CONTAINER_GLOBAL_ARGS,
    EE_CONTAINER_RUN_ARGS: process.env.EE_CONTAINER_RUN_ARGS ?? testing.TEST_PODMAN_ENV.EE_CONTAINER_RUN_ARGS,
  };
  const cli = new PodmanCli({
    command: podman,
    global_args: podmanEnv.EE_CONTAINER_GLOBAL_ARGS.split(/\s+/).filter(Boolean),
  });
  const image = await testing.ensureTestImage(cli);
  const parties = await marketParties(base, adminToken, join(stateDir, 'launcher.json'));
  const user_key_file = join(stateDir, 'user-key');
  writeFileSync(user_key_file, `${parties.user_key}\n`, { mode: 0o600 });
  return {
    image,
    user_key: parties.user_key,
    user_key_file,
    env: {
      ...podmanEnv,
      EE_CONTROL_WS: controlWs,
      EE_NETWORK: 'sandbox-1',
      EE_NODE_TOKEN: parties.node_token,
      EE_LAUNCHER_VCPUS: String(NODE_VCPUS),
      EE_LAUNCHER_STATE_DIR: join(stateDir, 'launcher'),
      EE_AGENT_STATE_DIR: join(stateDir, 'launcher'),
      EE_HEALTH_INTERVAL_SEC: '2',
    },
  };
}

/**
 * Prepares the launcher, starts it through `start(env)` and waits until jobs can be placed on it. Returns the
 * `ee jobs run` line to print, or null (no launcher: the reason is said).
 */
export async function startLauncher({
  root,
  stateDir,
  api,
  adminToken,
  controlWs,
  eeBin,
  readyTimeoutMs,
  say,
  stopping,
  start,
}) {
  let jobsLine = null;
  try {
    const l = await prepareLauncher({ root, stateDir, api, adminToken, controlWs });
    if (l.skip) say(`no local launcher (jobs need one): ${l.skip}`);
    else {
      start(l.env);
      const until = Date.now() + readyTimeoutMs;
      let placed = false;
      while (!stopping() && !placed && Date.now() < until) {
        const r = await fetch(`${api}/v1/jobs/placement`, { headers: { authorization: `Bearer ${l.user_key}` } }).catch(
          () => null,
        );
        placed = r?.status === 200;
        if (!placed) await new Promise((r2) => setTimeout(r2, 300));
      }
      if (!placed) say('the launcher did not become placeable in time (see its log lines above)');
      const from0 = process.env.INIT_CWD ?? process.cwd();
      const keyPath = relative(from0, l.user_key_file).startsWith('..')
        ? l.user_key_file
        : relative(from0, l.user_key_file);
      const eePath = relative(from0, eeBin).startsWith('..') ? eeBin : relative(from0, eeBin);
      jobsLine =
        `EE_API_KEY=$(cat ${keyPath}) EE_CONTROL_URL=${api} EE_NETWORK=sandbox-1 SECRET=hello node ${eePath} jobs run ${l.image} ` +
        `--env SECRET --wait -- sh -c 'printf %s "$SECRET" | sha256sum'`;
    }
  } catch (err) {
    say(`no local launcher: setting it up failed: ${err.message}`);
  }
  return jobsLine;
}
