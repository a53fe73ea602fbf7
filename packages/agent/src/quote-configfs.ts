// The agent's quote provider. On TDX: quotes through Linux configfs-tsm (EE_TSM_PATH, default
// /sys/kernel/config/tsm/report; the provider itself is ConfigfsQuoteProvider in @easyenclave/attestation, shared
// with the control plane, which attests itself the same way). Without TDX (the path is absent) the agent says so
// and uses the labelled sandbox provider, but only on a network that accepts it (sandbox-1). On a sealed network
// without TDX it refuses to start: never a silent fallback to evidence the network would refuse anyway.
import type { Logger } from 'pino';
import {
  ConfigfsQuoteProvider,
  DEFAULT_TSM_REPORT_PATH,
  hasConfigfsTsm,
  networkPolicy,
  SandboxQuoteProvider,
  type QuoteProvider,
} from '@easyenclave/attestation';

export { ConfigfsQuoteProvider, DEFAULT_TSM_REPORT_PATH, hasConfigfsTsm };

/** The agent cannot attest on its network (a sealed network on a machine without TDX). */
export class NoTdxError extends Error {
  override readonly name = 'NoTdxError';
}

export interface QuoteProviderChoice {
  repo: string;
  release_tag: string;
  network: string;
  /** configfs-tsm report directory (EE_TSM_PATH). */
  tsm_path?: string;
}

/** Picks the quote provider for this machine and network; throws NoTdxError on a sealed network without TDX. */
export function selectQuoteProvider(
  c: QuoteProviderChoice,
  log: Pick<Logger, 'info' | 'warn' | 'error'>,
): QuoteProvider {
  const path = c.tsm_path ?? DEFAULT_TSM_REPORT_PATH;
  if (hasConfigfsTsm(path)) {
    log.info({ tsm_path: path }, 'TDX: quotes through configfs-tsm');
    return new ConfigfsQuoteProvider({ path });
  }
  // Unknown networks count as sealed: fail closed.
  const sealed = networkPolicy(c.network)?.sealed ?? true;
  if (sealed) {
    const msg = `no TDX on this machine (${path} does not exist) and network "${c.network}" is sealed: it accepts only TDX evidence, so this agent cannot attest; refusing to start`;
    log.error({ network: c.network, tsm_path: path }, msg);
    throw new NoTdxError(msg);
  }
  log.warn(
    { network: c.network, tsm_path: path },
    `no TDX on this machine (${path} does not exist): using SANDBOX attestation (software key, development only)`,
  );
  return new SandboxQuoteProvider({ repo: c.repo, release_tag: c.release_tag });
}
