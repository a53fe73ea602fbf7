// EasyEnclave.connect (client.ts): decide whether to verify, verify the app's agent (the reservation's agent
// when one pays), and build the plain or the confidential app client.
import { networkPolicy } from '@easyenclave/attestation/network';
import { AppClient } from './app-client.js';
import { AttestationError } from './errors.js';
import type { CallOptions, Transport } from './http.js';
import type { Auth } from './calls.js';
import * as reservations from './reservations.js';
import type { Resolved } from './schemas.js';
import type { TrustOptions, VerifiedEvidence } from './trust.js';

export interface ConnectOptions extends CallOptions {
  /**
   * true/false, or trust options overriding the client's. Default: on, unless the network (`network` option,
   * else the app's network from GET /v1/resolve) is a sandbox network.
   */
  verify?: boolean | TrustOptions;
  /** Verify this agent of the app (default: one the control plane picks). */
  agent?: string;
  /**
   * Seal every request to the verified agent's key and open every response (docs/confidential.md). Needs
   * verification (it is what the key is taken from); the control plane sees only ciphertext.
   */
  confidential?: boolean;
  /**
   * With `confidential`: the reservation paying for the requests (what createReservation answered, or its id and
   * token); its agent is the one verified and used. The token travels sealed: only its holder's requests are
   * billed to the reservation (without it the agent signs no receipt).
   */
  reservation?: string | { reservation_id: string; token: string | null };
  /** The reservation's bearer token, when `reservation` is given as an id. */
  reservation_token?: string;
}

/** What connect needs of the client (a narrow port, so this module does not import the EasyEnclave class). */
export interface ConnectHost {
  transport: Transport;
  auth: Auth;
  network: string | undefined;
  resolve(app: string, o: CallOptions): Promise<Resolved>;
  verifyApp(app: string, o: CallOptions & { agent?: string; trust?: TrustOptions }): Promise<VerifiedEvidence>;
}

/** A client for `app`; verified first unless verification is off (see ConnectOptions.verify). */
export async function connectApp(h: ConnectHost, app: string, o: ConnectOptions): Promise<AppClient> {
  checkApp(app);
  const { verify, agent: asked, confidential, reservation: rsv, reservation_token, ...call } = o;
  const reservation = typeof rsv === 'object' ? rsv.reservation_id : rsv;
  const token = (typeof rsv === 'object' ? rsv.token : null) ?? reservation_token ?? null;
  if (reservation !== undefined && confidential !== true)
    throw new TypeError('a reservation pays for confidential requests: pass confidential: true');
  let on: boolean;
  if (confidential === true) {
    if (verify === false) throw new TypeError('a confidential connection verifies the agent it seals to');
    on = true;
  } else if (verify === undefined) {
    const network = h.network ?? (await h.resolve(app, call)).network;
    on = networkPolicy(network)?.sealed !== false; // unknown networks count as sealed
  } else {
    on = verify !== false;
  }
  if (!on) return new AppClient(h.transport, app, null, null);
  const trust = typeof verify === 'object' ? verify : undefined;
  // A reservation names its agent: that one is verified, and its keyset must be the reservation's.
  const held =
    reservation === undefined ? undefined : await reservations.reservation(h.transport, h.auth, reservation, call);
  const agent = held?.agent_id ?? asked;
  const run = async (c: CallOptions) => {
    const v = await h.verifyApp(app, {
      ...c,
      ...(agent !== undefined ? { agent } : {}),
      ...(trust ? { trust } : {}),
    });
    if (
      held &&
      (v.keyset.hpke_public_key !== held.keyset?.hpke_public_key ||
        v.keyset.receipt_public_key !== held.keyset?.receipt_public_key)
    )
      throw new AttestationError([
        `the verified agent's keyset is not the one reservation ${held.reservation_id} names`,
      ]);
    return v;
  };
  const verified = await run(call);
  if (confidential !== true) return new AppClient(h.transport, app, verified, run);
  const { ConfidentialAppClient } = await import('./confidential.js');
  return new ConfidentialAppClient(
    h.transport,
    app,
    verified,
    run,
    reservation === undefined ? null : { id: reservation, token },
    h.auth,
  );
}

/** The app's path segment; the control plane decides which names exist (404 unknown_app). */
export function checkApp(app: string): string {
  if (typeof app !== 'string' || app === '') throw new TypeError('app must be a non-empty app name');
  return encodeURIComponent(app);
}
