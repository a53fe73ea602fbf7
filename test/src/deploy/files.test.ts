// deploy/'s static files agree with the code (issue 15 item 1): every EE_* variable they set is one the
// control plane or the agent reads, their example settings load (and pass the production start check), the
// images build from paths that exist, run as a non-root user and are multi-stage, and the systemd units
// pass `systemd-analyze verify` where systemd is installed. (nginx's and Caddy's files run for real in
// front-proxies.test.ts; the images are built and run by images.test.ts, opt-in with EE_TEST_IMAGES=1.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkExposure, CONTROL_PLANE_ENV_VARS, loadControlPlaneConfig } from '@easyenclave/control-plane/config';
import { loadAgentConfig } from '@easyenclave/agent';
import { loadLauncherConfig } from '@easyenclave/launcher';
import { REPO_ROOT } from '../helpers/network.js';
import { tmpDir } from '../helpers/tmp.js';

const DEPLOY = join(REPO_ROOT, 'deploy');
const read = (f: string) => readFileSync(join(DEPLOY, f), 'utf8');

/** The agent's variables, as its config module names them. */
const AGENT_ENV_VARS = new Set(
  [...readFileSync(join(REPO_ROOT, 'packages/agent/src/config.ts'), 'utf8').matchAll(/'(EE_[A-Z0-9_]+)'/g)].map(
    (m) => m[1]!,
  ),
);

/** The launcher's own variables; it also reads the agent's (it dials like one). */
const LAUNCHER_ENV_VARS = new Set([
  ...AGENT_ENV_VARS,
  ...[...readFileSync(join(REPO_ROOT, 'packages/launcher/src/config.ts'), 'utf8').matchAll(/'(EE_[A-Z0-9_]+)'/g)].map(
    (m) => m[1]!,
  ),
]);

/** KEY=value lines of an env file (comments and commented-out settings included, so they are checked too). */
function envFile(text: string): { all: Map<string, string>; active: Record<string, string> } {
  const all = new Map<string, string>();
  const active: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(#?)([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (!m) continue;
    all.set(m[2]!, m[3]!);
    if (m[1] === '') active[m[2]!] = m[3]!;
  }
  return { all, active };
}

const SAMPLES: Record<string, string> = {
  EE_DEMO_REPO: 'acme/demo',
  EE_DEMO_RELEASE_TAG: 'v1.0.0',
  EE_DEMO_APP_NAME: 'demo',
};

/** The `environment:` entries of one compose service, with `${VAR...}` replaced by a sample value. */
function composeEnv(service: string): Record<string, string> {
  const text = read('compose.yaml');
  const start = text.indexOf(`\n  ${service}:\n`);
  assert.ok(start >= 0, `service ${service} in compose.yaml`);
  const rest = text.slice(start + 1);
  const end = rest.slice(3).search(/\n {2}[a-z]/);
  const block = end < 0 ? rest : rest.slice(0, end + 3);
  const env: Record<string, string> = {};
  for (const m of block.matchAll(/^ {6}([A-Z][A-Z0-9_]*): (.*)$/gm)) {
    env[m[1]!] = m[2]!
      .replace(/^'(.*)'$/, '$1')
      .replace(/\$\{EE_ADMIN_TOKEN[^}]*\}|\$\{EE_LAUNCHER_TOKEN[^}]*\}|\$\{EE_UPTIME_TOKEN[^}]*\}/g, 'x'.repeat(24))
      .replace(/\$\{EE_APP_DOMAIN[^}]*\}/g, 'app.example.com')
      .replace(/\$\{([A-Z_]+)(?::[-?][^}]*)?\}/g, (_, name: string) => SAMPLES[name] ?? 'sample');
  }
  return env;
}

describe('deploy/ files', () => {
  it('name only variables the control plane or the agent reads', () => {
    const cp = new Set(CONTROL_PLANE_ENV_VARS);
    const unknown = (names: Iterable<string>, known: Set<string>, where: string) =>
      [...names].filter((n) => n.startsWith('EE_') && !known.has(n)).map((n) => `${where}: ${n}`);
    const problems = [
      ...unknown(envFile(read('systemd/control-plane.env.example')).all.keys(), cp, 'control-plane.env.example'),
      ...unknown(Object.keys(composeEnv('control-plane')), cp, 'compose.yaml control-plane'),
      ...unknown(envFile(read('systemd/agent.env.example')).all.keys(), AGENT_ENV_VARS, 'agent.env.example'),
      ...unknown(Object.keys(composeEnv('agent')), AGENT_ENV_VARS, 'compose.yaml agent'),
      ...unknown(envFile(read('systemd/launcher.env.example')).all.keys(), LAUNCHER_ENV_VARS, 'launcher.env.example'),
    ];
    assert.deepEqual(problems, []);
  });

  it('example settings load, and pass the production start check', () => {
    for (const env of [envFile(read('systemd/control-plane.env.example')).active, composeEnv('control-plane')]) {
      const cfg = loadControlPlaneConfig(env);
      assert.doesNotThrow(() => checkExposure(cfg));
      assert.ok(cfg.admin_token !== undefined, 'the examples set an admin token');
    }
    const agent = loadAgentConfig({ ...envFile(read('systemd/agent.env.example')).active, EE_AGENT_ID: 'agent-0001' });
    assert.match(agent.control_ws, /^wss:\/\//);
    loadAgentConfig({ ...composeEnv('agent'), EE_AGENT_ID: 'agent-0001' });
    const launcher = loadLauncherConfig(
      {
        ...envFile(read('systemd/launcher.env.example')).active,
        EE_LAUNCHER_STATE_DIR: '/var/lib/easyenclave-launcher',
      },
      { vcpus: 64, memory_mib: 262_144 },
    );
    assert.deepEqual(launcher.capacity, { vcpus: 4, memory_mib: 8192 });
  });

  it('images: multi-stage, built from paths that exist, run as a non-root user', () => {
    for (const file of ['control-plane.Dockerfile', 'node.Dockerfile']) {
      const text = read(file);
      assert.match(text, /^FROM \S+ AS build$/m, `${file}: a build stage`);
      for (const m of text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
        for (const src of m[1]!.split(/\s+/)) assert.ok(existsSync(join(REPO_ROOT, src)), `${file}: COPY ${src}`);
      }
      for (const m of text.matchAll(/"\/app\/([^"]+\.js)"/g))
        assert.ok(existsSync(join(REPO_ROOT, m[1]!)), `${file}: runs ${m[1]}`);
      // Every stage after the build one ends as the `node` user.
      const stages = text.split(/^FROM /m).slice(2);
      assert.ok(stages.length >= 1);
      for (const stage of stages) {
        const users = [...stage.matchAll(/^USER (\S+)$/gm)].map((u) => u[1]);
        const inherited = /^agent AS/.test(stage);
        assert.ok(users.at(-1) === 'node' || (inherited && users.length === 0), `${file}: final user of a stage`);
      }
    }
  });

  it('the build context leaves out host build output and dependencies (.dockerignore)', () => {
    const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    // A host dist/ or tsbuildinfo would let `tsc -b` in the image skip compiling; node_modules holds host binaries.
    for (const pattern of ['**/node_modules', '**/dist', '**/*.tsbuildinfo', '.git'])
      assert.ok(ignored.includes(pattern), `.dockerignore: ${pattern}`);
  });

  it('systemd units verify', { skip: !existsSync('/usr/bin/systemd-analyze') && 'no systemd-analyze' }, () => {
    const dir = tmpDir('ee-units-');
    const units = [
      ['easyenclave-control-plane.service', 'easyenclave-control-plane.service'],
      ['easyenclave-agent@.service', 'easyenclave-agent@demo.service'],
      ['easyenclave-launcher.service', 'easyenclave-launcher.service'],
    ];
    for (const [src, dst] of units) copyFileSync(join(DEPLOY, 'systemd', src!), join(dir, dst!));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...units.map(([, d]) => join(dir, d!))], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.trim(), '', r.stderr);
  });
});
