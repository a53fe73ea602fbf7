// `ee --help` and `ee <command> --help` for every command: exit 0, the usage line, every option the
// command takes, examples for the network commands; and commander's usage errors exit 2.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ee, failsWith, show } from './util.js';

const CONNECTION = ['--url', '--admin-token', '--api-key', '--timeout-ms', '--json'];

/** Every command, with the options its help must mention. */
const COMMANDS: Array<{ path: string[]; options: string[]; examples: boolean }> = [
  {
    path: [],
    options: [
      '--version',
      '--help',
      'health',
      'apps',
      'attestation',
      'quote',
      'control-plane',
      'agent',
      'EE_CONTROL_URL',
      'EE_ADMIN_TOKEN',
      'EE_API_KEY',
      'Exit codes',
    ],
    examples: true,
  },
  { path: ['health'], options: CONNECTION, examples: true },
  { path: ['apps'], options: ['list', 'show', 'resolve'], examples: false },
  { path: ['apps', 'list'], options: CONNECTION, examples: true },
  { path: ['apps', 'show'], options: [...CONNECTION, '<app>'], examples: true },
  { path: ['apps', 'resolve'], options: [...CONNECTION, '<app>'], examples: true },
  { path: ['attestation'], options: ['fetch', 'verify'], examples: false },
  { path: ['attestation', 'fetch'], options: [...CONNECTION, '--app', '--nonce', '--out'], examples: true },
  {
    path: ['attestation', 'verify'],
    options: [
      ...CONNECTION,
      '--app',
      '--nonce',
      '--evidence',
      '--policy',
      '--collateral',
      '--pccs-url',
      '--network',
      '--require-tdx',
      '--root-ca',
    ],
    examples: true,
  },
  { path: ['quote'], options: ['verify'], examples: false },
  {
    path: ['quote', 'verify'],
    options: ['--collateral', '--at', '--policy', '--repo', '--release-tag', '--network', '--json', '--root-ca'],
    examples: false,
  },
  { path: ['control-plane'], options: ['EE_CONTROL_PORT', 'SIGHUP'], examples: false },
  { path: ['agent'], options: ['EE_CONTROL_WS', 'EE_BACKEND_URL'], examples: false },
];

describe('ee --help', () => {
  for (const c of COMMANDS) {
    test(`ee ${[...c.path, '--help'].join(' ')}`, async () => {
      const r = await ee([...c.path, '--help']);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, new RegExp(`^Usage: ee${c.path.map((p) => ` ${p}`).join('')} `, 'm'));
      for (const o of c.options)
        assert.ok(r.stdout.includes(o), `${c.path.join(' ')} --help does not mention ${o}\n${r.stdout}`);
      if (c.examples) {
        const examples = r.stdout.split('\nExamples:\n')[1] ?? '';
        assert.ok(
          examples.includes(`ee ${c.path.join(' ')}`.trim()),
          `no example of ee ${c.path.join(' ')}\n${r.stdout}`,
        );
      }
      assert.equal(r.stderr, '');
    });
  }

  test('ee help <command> is the same as ee <command> --help', async () => {
    const a = await ee(['help', 'health']);
    const b = await ee(['health', '--help']);
    assert.equal(a.code, 0, show(a));
    assert.equal(a.stdout, b.stdout);
  });

  test('--version exits 0', async () => {
    const r = await ee(['--version']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  });
});

describe('usage errors exit 2', () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /Usage: ee/],
    [['bogus'], /unknown command 'bogus'/],
    [['health', '--bogus'], /unknown option '--bogus'/],
    [['apps', 'list', '--jsn'], /unknown option '--jsn'/],
    [['apps', 'show'], /missing required argument 'app'/],
    [['apps', 'resolve', 'demo', 'extra'], /too many arguments/],
    [['attestation', 'verify'], /required option '--policy <file>' not specified/],
    [['apps', 'show', 'Not_An_App'], /"Not_An_App" is not an app name/],
    [['attestation', 'fetch', '--nonce', 'abc'], /--nonce must be exactly 64 hex characters/],
    [['attestation', 'fetch', '--nonce', 'g'.repeat(64)], /--nonce must be exactly 64 hex characters/],
    [['attestation', 'fetch', '--app', 'Bad App'], /--app must be an app name/],
    [['health', '--url', 'not a url'], /--url \/ EE_CONTROL_URL is not a URL/],
    [['health', '--url', 'ftp://127.0.0.1:8088'], /must be http:\/\/ or https:\/\//],
    [['health', '--timeout-ms', '0'], /--timeout-ms must be a whole number/],
    [['health', '--timeout-ms', '1.5'], /--timeout-ms must be a whole number/],
  ];
  for (const [args, stderr] of cases) {
    test(`ee ${args.join(' ') || '(no arguments)'}`, async () => {
      const r = await ee(args);
      failsWith(r, 2, stderr);
    });
  }

  test('a URL with credentials is refused without echoing them', async () => {
    const r = await ee(['health', '--url', 'http://user:hunter2-password@127.0.0.1:8088']);
    failsWith(r, 2, /must not contain credentials/);
    assert.ok(!r.stderr.includes('hunter2'), r.stderr);
  });
});
