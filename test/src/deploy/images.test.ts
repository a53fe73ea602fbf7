// The images of deploy/ built and run for real with podman (deploy/check-images.sh): the control plane image
// answers /health as a non-root user on SQLite with sandbox attestation, an agent from the agent image
// registers to it and serves its app through the tunnel, the launcher image has podman, SIGTERM stops the
// control plane cleanly, and the same image runs on PostgreSQL. Opt-in (EE_TEST_IMAGES=1): it takes minutes (debootstrap for the stand-in base image
// the first time, npm ci and a better-sqlite3 compile per image) and needs root, podman and debootstrap.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/network.js';
import { podmanSkipReason } from '../helpers/podman.js';

/** Three image builds with compiles on two shared cores, plus the first stand-in base. */
const IMAGES_TIMEOUT_MS = 40 * 60_000;
/** What the images add to their base (compiled packages, production node_modules): a bound that catches a
 * build leaking dev dependencies, compilers or sources into a runtime image (measured: about 45 MB). */
const MAX_ADDED_MB = 100;

function skipReason(): false | string {
  if (process.env.EE_TEST_IMAGES !== '1')
    return 'SKIPPED: image builds take minutes; set EE_TEST_IMAGES=1 to build and run deploy/*.Dockerfile with podman';
  return podmanSkipReason();
}

interface Result {
  control_plane_build_s: number;
  agent_build_s: number;
  launcher_build_s: number;
  base_mb: number;
  control_plane_mb: number;
  agent_mb: number;
  launcher_mb: number | null;
  health: number;
  control_plane_uid: number;
  control_plane_user: string;
  db: string;
  agent_uid: number;
  agent_state_owner: string;
  agents_routable: number;
  proxied: number;
  control_plane_exit: number;
  postgres: string;
}

describe('deploy images (podman)', { skip: skipReason(), timeout: IMAGES_TIMEOUT_MS }, () => {
  it('build, run as non-root, answer /health, take an agent, stop cleanly', () => {
    const r = spawnSync('bash', [join(REPO_ROOT, 'deploy/check-images.sh')], {
      encoding: 'utf8',
      timeout: IMAGES_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
    });
    assert.equal(r.status, 0, `check-images.sh failed:\n${r.stderr}\n${r.stdout}`);
    const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    assert.ok(line, r.stdout);
    const res = JSON.parse(line.slice('RESULT '.length)) as Result;
    console.log(line);
    assert.equal(res.health, 200);
    assert.notEqual(res.control_plane_uid, 0);
    assert.equal(res.control_plane_user, 'node');
    assert.match(res.db, /^\/var\/lib\/easyenclave\/control-plane\.db node$/);
    assert.notEqual(res.agent_uid, 0);
    assert.equal(res.agent_state_owner, 'node');
    assert.ok(res.agents_routable >= 1);
    assert.equal(res.proxied, 200);
    assert.equal(res.control_plane_exit, 0);
    // On this machine's PostgreSQL when it is up (the script fails if that run does).
    assert.match(res.postgres, /^(ready, \d+ tables|skipped)$/);
    for (const [name, mb] of [
      ['control plane', res.control_plane_mb],
      ['agent', res.agent_mb],
    ] as const)
      assert.ok(mb - res.base_mb < MAX_ADDED_MB, `${name} image adds ${(mb - res.base_mb).toFixed(1)} MB to its base`);
  });
});
