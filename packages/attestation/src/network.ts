// Network attestation policy (DESIGN §3): a sealed network accepts only hardware (TDX) evidence;
// an unsealed one also accepts the labelled sandbox attestation, for development.

export const NETWORKS = {
  'forge-1': { sealed: true },
  'sandbox-1': { sealed: false },
} as const satisfies Record<string, { readonly sealed: boolean }>;

export type NetworkName = keyof typeof NETWORKS;

export interface NetworkPolicy {
  name: NetworkName;
  sealed: boolean;
}

/** Own-property lookup, so names like "__proto__" or "constructor" are unknown rather than inherited. */
export function isKnownNetwork(name: string): name is NetworkName {
  return typeof name === 'string' && Object.hasOwn(NETWORKS, name);
}

export function networkPolicy(name: string): NetworkPolicy | undefined {
  if (!isKnownNetwork(name)) return undefined;
  return { name, sealed: NETWORKS[name].sealed };
}
