// Node tokens `ee_node_{16 hex node id}_{secret}`: minted at registration, checked when an agent binds to a node.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const sha256hex = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const NODE_TOKEN = /^ee_node_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** A node token `ee_node_{16 hex node id}_{secret}`: returned once at registration, only its hash is kept. */
export function newNodeToken(): { node_id: string; token: string; hash: string } {
  const hex = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { node_id: `node_${hex}`, token: `ee_node_${hex}_${secret}`, hash: sha256hex(secret) };
}

/** The node id a token names, or undefined when it is not shaped like a node token. */
export function tokenNodeId(token: string): string | undefined {
  const m = NODE_TOKEN.exec(token);
  return m ? `node_${m[1]}` : undefined;
}

/** Constant-time check of a presented token against a node's stored hash (a malformed token hashes ''). */
export function tokenMatches(token: string, token_hash: string | null): boolean {
  if (token_hash === null) return false;
  const m = NODE_TOKEN.exec(token);
  const presented = Buffer.from(sha256hex(m?.[2] ?? ''), 'hex');
  return timingSafeEqual(presented, Buffer.from(token_hash, 'hex'));
}
