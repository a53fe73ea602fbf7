// Errors the `ee` commands throw, and the redaction every line on stderr goes through.
//
// Exit codes (README, docs/cli.md): 0 ok, 1 failure (the server said no, it could not be reached, a check
// failed), 2 usage (bad flags or arguments, unreadable input files, invalid configuration).

export type ExitCode = 1 | 2;

/** A failure with a message meant for the user; main.ts prints `ee: <message>` and exits with `exit_code`. */
export class CliError extends Error {
  readonly exit_code: ExitCode;
  /** The API's error code (`{error:{code}}`), when the failure came from the server. */
  readonly code: string | undefined;

  constructor(message: string, exit_code: ExitCode = 1, code?: string) {
    super(message);
    this.name = 'CliError';
    this.exit_code = exit_code;
    this.code = code;
  }
}

/** A usage error: exit 2. */
export function usageError(message: string): CliError {
  return new CliError(message, 2);
}

// ---------- Secrets ----------

/** Flags whose values are secrets. */
export const SECRET_FLAGS = ['--admin-token', '--api-key', '--launcher-token', '--uptime-token'] as const;
/** Environment variables whose values are secrets (EE_NODE_TOKEN: what `ee agent` binds its node with). */
export const SECRET_ENV = [
  'EE_ADMIN_TOKEN',
  'EE_API_KEY',
  'EE_LAUNCHER_TOKEN',
  'EE_UPTIME_TOKEN',
  'EE_NODE_TOKEN',
  'EE_RESERVATION_TOKEN',
] as const;
/** Shorter values are not redacted: replacing every "a" in a message would make it unreadable, and such a
 *  value is no secret anyway (the control plane requires 16 characters or more). */
const MIN_SECRET_LENGTH = 6;

/** Every secret value this process was given, on the command line or in the environment. */
export function collectSecrets(argv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const out = new Set<string>();
  for (const name of SECRET_ENV) {
    const v = env[name];
    if (v !== undefined && v.length >= MIN_SECRET_LENGTH) out.add(v);
  }
  argv.forEach((arg, i) => {
    for (const flag of SECRET_FLAGS) {
      let v: string | undefined;
      if (arg === flag) v = argv[i + 1];
      else if (arg.startsWith(`${flag}=`)) v = arg.slice(flag.length + 1);
      if (v !== undefined && v.length >= MIN_SECRET_LENGTH) out.add(v);
    }
  });
  // Longest first, so a secret that contains another is replaced whole.
  return [...out].sort((a, b) => b.length - a.length);
}

let secrets: string[] = [];

/** Registers the secrets `redact` removes (main.ts calls it once, before parsing). */
export function setSecrets(values: string[]): void {
  secrets = values;
}

/** The text with every known secret replaced by `[redacted]`: a last line of defence for stderr. */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('[redacted]');
  return out;
}

/** Strips control characters (terminal escape sequences from a hostile server) and keeps text on one line. */
export function sanitize(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?').replace(/\n/g, ' ');
}
