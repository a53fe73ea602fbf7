import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CONTROL_PLANE_ENV_BY_SETTING,
  CONTROL_PLANE_ENV_VARS,
  ConfigError,
  loadControlPlaneConfig,
  SEED_DURATION_VARS,
} from '@easyenclave/control-plane/config';

const DAY_MS = 86_400_000;

/** Asserts that env is refused with a ConfigError naming `variable` (in .variable and the message). */
function refused(env: Record<string, string>, variable: string, message?: RegExp): ConfigError {
  try {
    loadControlPlaneConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.variable, variable);
    assert.ok(err.message.startsWith(`${variable} must be`), err.message);
    if (message) assert.match(err.message, message);
    return err;
  }
  assert.fail(`${JSON.stringify(env)} was accepted`);
}

test('defaults match the seed (control-plane README) and the brief', () => {
  assert.deepEqual(
    { ...loadControlPlaneConfig({}) },
    {
      control_bind: '0.0.0.0',
      control_port: 8088,
      proxy_bind: '0.0.0.0',
      proxy_port: 9090,
      db_path: 'control_plane/data/control-plane.db',
      database_url: undefined,
      admin_token: undefined,
      allow_no_admin_token: false,
      tls_cert_file: undefined,
      tls_key_file: undefined,
      launcher_token: undefined,
      uptime_token: undefined,
      github_token: undefined,
      allowlist_asset: 'agent-attestation-allowlist.json',
      pccs_url: undefined,
      collateral_file: undefined,
      attest_root_ca_file: undefined,
      attest_allow_non_intel_root: false,
      tsm_path: '/sys/kernel/config/tsm/report',
      attest_interval_ms: 3_600_000,
      attest_deadline_ms: 30_000,
      health_timeout_ms: 120_000,
      registration_ttl_ms: 30 * DAY_MS,
      registration_warn_ms: 3 * DAY_MS,
      app_domain: undefined,
      proxy_timeout_ms: 60_000,
      proxy_idle_timeout_ms: 60_000,
      max_streams_per_agent: 256,
      max_body_bytes: 0,
      max_header_bytes: 16_384,
      max_handshakes: 256,
      headers_timeout_ms: 30_000,
      body_timeout_ms: 30_000,
      max_connections: 10_000,
      max_connections_per_address: 256,
      max_handshakes_per_address: 32,
      register_deadline_ms: 10_000,
      max_buffered_stream_bytes: 256 * 1024 * 1024,
      app_claims_per_hour: 100,
      proxy_path_active_content: false,
      drain_timeout_ms: 30_000,
      queue_timeout_ms: 2000,
      log_level: 'info',
      access_log: 'sampled',
      settlement_period_ms: 3_600_000,
      settlement_grace_ms: 7 * DAY_MS,
      settlement_delay_ms: 300_000,
      sandbox_settlement_period_ms: undefined,
      unstake_cooldown_ms: DAY_MS,
      outage_threshold_premium_ms: 300_000,
      outage_threshold_standard_ms: 1_800_000,
      outage_threshold_economy_ms: 7_200_000,
    },
  );
});

test('the config is frozen', () => {
  const cfg = loadControlPlaneConfig({});
  assert.ok(Object.isFrozen(cfg));
});

test('values are parsed and converted to ms', () => {
  const cfg = loadControlPlaneConfig({
    EE_CONTROL_BIND: '127.0.0.1',
    EE_CONTROL_PORT: '0',
    EE_PROXY_BIND: '::',
    EE_PROXY_PORT: '0',
    EE_DB_PATH: ':memory:',
    EE_DATABASE_URL: 'postgresql://u:p@db:5432/ee',
    EE_ADMIN_TOKEN: 'x'.repeat(16),
    EE_LAUNCHER_TOKEN: 'l'.repeat(16),
    EE_UPTIME_TOKEN: 'u'.repeat(16),
    EE_GITHUB_TOKEN: 'ghp_x',
    EE_PCCS_URL: 'https://pccs.example.com:8081/sgx/',
    EE_ATTEST_INTERVAL_SEC: '60',
    EE_ATTEST_DEADLINE_SEC: '59',
    EE_HEALTH_TIMEOUT_SEC: '5',
    EE_APP_DOMAIN: '.App.Example.COM',
    EE_PROXY_TIMEOUT_SEC: '7',
    EE_PROXY_IDLE_TIMEOUT_SEC: '8',
    EE_MAX_STREAMS_PER_AGENT: '65535',
    EE_MAX_BODY_BYTES: '1073741824',
    EE_MAX_HEADER_BYTES: '32768',
    EE_MAX_CONCURRENT_HANDSHAKES: '10',
    EE_DRAIN_TIMEOUT_SEC: '0',
    EE_QUEUE_TIMEOUT_MS: '0',
    EE_LOG_LEVEL: 'silent',
  });
  assert.equal(cfg.control_port, 0);
  assert.equal(cfg.proxy_port, 0);
  assert.equal(cfg.proxy_bind, '::');
  assert.equal(cfg.db_path, ':memory:');
  assert.equal(cfg.database_url, 'postgresql://u:p@db:5432/ee');
  assert.equal(cfg.attest_interval_ms, 60_000);
  assert.equal(cfg.attest_deadline_ms, 59_000);
  assert.equal(cfg.health_timeout_ms, 5000);
  assert.equal(cfg.app_domain, 'app.example.com');
  assert.equal(cfg.proxy_timeout_ms, 7000);
  assert.equal(cfg.proxy_idle_timeout_ms, 8000);
  assert.equal(cfg.max_streams_per_agent, 65_535);
  assert.equal(cfg.max_body_bytes, 1_073_741_824);
  assert.equal(cfg.drain_timeout_ms, 0);
  assert.equal(cfg.queue_timeout_ms, 0);
  assert.equal(cfg.log_level, 'silent');
  assert.equal(loadControlPlaneConfig({ EE_APP_DOMAIN: 'localhost' }).app_domain, 'localhost');
});

test('fractional days are allowed for the registration TTL and warning', () => {
  const cfg = loadControlPlaneConfig({ EE_REGISTRATION_TTL_DAYS: '0.5', EE_REGISTRATION_WARN_DAYS: '0.25' });
  assert.equal(cfg.registration_ttl_ms, 12 * 3_600_000);
  assert.equal(cfg.registration_warn_ms, 6 * 3_600_000);
  assert.equal(loadControlPlaneConfig({ EE_REGISTRATION_WARN_DAYS: '0' }).registration_warn_ms, 0);
  assert.equal(
    loadControlPlaneConfig({ EE_REGISTRATION_TTL_DAYS: '.5', EE_REGISTRATION_WARN_DAYS: '0' }).registration_ttl_ms,
    DAY_MS / 2,
  );
});

test('an empty string means unset', () => {
  const cfg = loadControlPlaneConfig({ EE_CONTROL_PORT: '', EE_ADMIN_TOKEN: '', EE_APP_DOMAIN: '', EE_LOG_LEVEL: '' });
  assert.equal(cfg.control_port, 8088);
  assert.equal(cfg.admin_token, undefined);
  assert.equal(cfg.app_domain, undefined);
  assert.equal(cfg.log_level, 'info');
});

test('EE_ACCESS_LOG: off, sampled (the default) or full; anything else stops start-up naming it', () => {
  assert.equal(loadControlPlaneConfig({}).access_log, 'sampled');
  for (const v of ['off', 'sampled', 'full'] as const)
    assert.equal(loadControlPlaneConfig({ EE_ACCESS_LOG: v }).access_log, v);
  assert.throws(
    () => loadControlPlaneConfig({ EE_ACCESS_LOG: 'verbose' }),
    /EE_ACCESS_LOG must be one of off, sampled, full/,
  );
});

test('unknown EE_* variables are ignored, and the known names are exported', () => {
  assert.doesNotThrow(() =>
    loadControlPlaneConfig({ EE_CONTROL_PROT: 'abc', EE_REPO: 'org/repo', EE_BACKEND_URL: 'x' }),
  );
  assert.equal(new Set(CONTROL_PLANE_ENV_VARS).size, CONTROL_PLANE_ENV_VARS.length, 'no name twice');
  assert.equal(CONTROL_PLANE_ENV_VARS.length, Object.keys(loadControlPlaneConfig({})).length, 'one per setting');
  for (const name of [
    'EE_CONTROL_PORT',
    'EE_DB_PATH',
    'EE_QUEUE_TIMEOUT_MS',
    'EE_MAX_CONCURRENT_HANDSHAKES',
    'EE_LOG_LEVEL',
    'EE_ACCESS_LOG',
    'EE_HEADERS_TIMEOUT_MS',
    'EE_BODY_TIMEOUT_MS',
    'EE_MAX_CONNECTIONS',
    'EE_MAX_CONNECTIONS_PER_ADDRESS',
  ]) {
    assert.ok(CONTROL_PLANE_ENV_VARS.includes(name), name);
  }
  assert.ok(!CONTROL_PLANE_ENV_VARS.some((n) => /INSECURE/.test(n)));
});

test('market settings: whole-hour periods, durations with a unit, delay shorter than the grace', () => {
  const cfg = loadControlPlaneConfig({
    EE_SETTLEMENT_PERIOD: '2h',
    EE_SETTLEMENT_GRACE: '12h',
    EE_SETTLEMENT_DELAY: '90s',
    EE_UNSTAKE_COOLDOWN: '0s',
    EE_OUTAGE_THRESHOLD_PREMIUM: '1m',
  });
  assert.equal(cfg.settlement_period_ms, 7_200_000);
  assert.equal(cfg.settlement_grace_ms, 43_200_000);
  assert.equal(cfg.settlement_delay_ms, 90_000);
  assert.equal(cfg.unstake_cooldown_ms, 0);
  assert.equal(cfg.outage_threshold_premium_ms, 60_000);
  assert.equal(loadControlPlaneConfig({ EE_SETTLEMENT_PERIOD: '3' }).settlement_period_ms, 3 * 3_600_000);
  refused({ EE_SETTLEMENT_PERIOD: '1.5h' }, 'EE_SETTLEMENT_PERIOD', /whole number of hours/);
  refused({ EE_SETTLEMENT_PERIOD: '30m' }, 'EE_SETTLEMENT_PERIOD');
  refused({ EE_SETTLEMENT_GRACE: '7 days' }, 'EE_SETTLEMENT_GRACE');
  refused({ EE_OUTAGE_THRESHOLD_ECONOMY: '0s' }, 'EE_OUTAGE_THRESHOLD_ECONOMY');
  refused(
    { EE_SETTLEMENT_GRACE: '10m', EE_SETTLEMENT_DELAY: '10m' },
    'EE_SETTLEMENT_DELAY',
    /shorter than EE_SETTLEMENT_GRACE/,
  );
});

test('numbers must be plain decimal', () => {
  const err = refused({ EE_CONTROL_PORT: 'abc' }, 'EE_CONTROL_PORT', /from 0 to 65535.*got "abc"/);
  assert.equal(err.name, 'ConfigError');
  for (const bad of ['1e3', ' 5', '5 ', '0x10', '-1', '+5', '80.0', '65536', '١٢'])
    refused({ EE_PROXY_PORT: bad }, 'EE_PROXY_PORT');
  for (const bad of ['1e1', '-1', '1,5', 'NaN', 'Infinity', '1.', ' 1'])
    refused({ EE_REGISTRATION_TTL_DAYS: bad }, 'EE_REGISTRATION_TTL_DAYS');
  refused({ EE_MAX_BODY_BYTES: '99999999999999999999' }, 'EE_MAX_BODY_BYTES');
});

test('each invalid value is refused with an error naming its variable', () => {
  const cases: Array<[string, string]> = [
    ['EE_CONTROL_BIND', 'not a host!'],
    ['EE_PROXY_BIND', 'a b'],
    ['EE_PROXY_PORT', '70000'],
    ['EE_DATABASE_URL', 'mysql://db/ee'],
    ['EE_DATABASE_URL', 'postgres:/nope'],
    ['EE_ADMIN_TOKEN', 'short'],
    ['EE_ADMIN_TOKEN', ' 0123456789abcdef'],
    ['EE_LAUNCHER_TOKEN', 'tok '],
    ['EE_PCCS_URL', 'pccs.example.com'],
    ['EE_PCCS_URL', 'ftp://pccs.example.com'],
    ['EE_ATTEST_INTERVAL_SEC', '0'],
    ['EE_ATTEST_DEADLINE_SEC', '0'],
    ['EE_ATTEST_INTERVAL_SEC', '1.5'],
    ['EE_ATTEST_INTERVAL_SEC', '2147484'],
    ['EE_HEALTH_TIMEOUT_SEC', '0'],
    ['EE_REGISTRATION_TTL_DAYS', '0'],
    ['EE_REGISTRATION_WARN_DAYS', '-1'],
    ['EE_APP_DOMAIN', 'bad_domain.com'],
    ['EE_APP_DOMAIN', 'a..b'],
    ['EE_APP_DOMAIN', 'https://app.example.com'],
    ['EE_PROXY_TIMEOUT_SEC', '0'],
    ['EE_PROXY_IDLE_TIMEOUT_SEC', 'x'],
    ['EE_MAX_STREAMS_PER_AGENT', '0'],
    ['EE_MAX_STREAMS_PER_AGENT', '65536'],
    ['EE_MAX_BODY_BYTES', '-1'],
    ['EE_MAX_HEADER_BYTES', '10'],
    ['EE_MAX_CONCURRENT_HANDSHAKES', '0'],
    ['EE_DRAIN_TIMEOUT_SEC', 'soon'],
    ['EE_QUEUE_TIMEOUT_MS', '2s'],
    ['EE_LOG_LEVEL', 'verbose'],
    ['EE_LOG_LEVEL', 'INFO'],
  ];
  for (const [name, value] of cases) refused({ [name]: value }, name);
});

test('secrets are never echoed in errors', () => {
  const err = refused({ EE_ADMIN_TOKEN: 'hunter2' }, 'EE_ADMIN_TOKEN', /at least 16 characters/);
  assert.ok(!err.message.includes('hunter2'));
  const url = refused({ EE_DATABASE_URL: 'mysql://root:s3cret@db/ee' }, 'EE_DATABASE_URL');
  assert.ok(!url.message.includes('s3cret'));
});

test('the attestation deadline must be shorter than the interval', () => {
  refused(
    { EE_ATTEST_INTERVAL_SEC: '30', EE_ATTEST_DEADLINE_SEC: '30' },
    'EE_ATTEST_DEADLINE_SEC',
    /less than EE_ATTEST_INTERVAL_SEC/,
  );
  refused({ EE_ATTEST_INTERVAL_SEC: '10' }, 'EE_ATTEST_DEADLINE_SEC'); // default deadline 30 ≥ 10
  assert.equal(loadControlPlaneConfig({ EE_ATTEST_INTERVAL_SEC: '31' }).attest_interval_ms, 31_000);
});

test('the registration warning must be shorter than the TTL', () => {
  refused({ EE_REGISTRATION_TTL_DAYS: '3' }, 'EE_REGISTRATION_WARN_DAYS', /less than EE_REGISTRATION_TTL_DAYS/);
  refused({ EE_REGISTRATION_TTL_DAYS: '1', EE_REGISTRATION_WARN_DAYS: '1.5' }, 'EE_REGISTRATION_WARN_DAYS');
});

test('durations: one spelling for every variable after the seed (EE_<WHAT>_MS, whole milliseconds)', () => {
  const durations = Object.entries(CONTROL_PLANE_ENV_BY_SETTING).filter(([setting]) => setting.endsWith('_ms'));
  assert.ok(durations.length >= SEED_DURATION_VARS.length);
  for (const [setting, variable] of durations) {
    if (SEED_DURATION_VARS.includes(variable)) continue;
    assert.match(variable, /^EE_[A-Z_]+_MS$/, `${setting} is read from ${variable}`);
  }
  // The seed's list names only variables that exist and are durations: it cannot hide a new one.
  for (const variable of SEED_DURATION_VARS) {
    const setting = Object.entries(CONTROL_PLANE_ENV_BY_SETTING).find(([, v]) => v === variable)?.[0];
    assert.ok(setting?.endsWith('_ms'), `${variable} is not a duration setting`);
  }
});
