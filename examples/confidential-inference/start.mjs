#!/usr/bin/env node
// `npm start`: how to run the example against a local network.
process.stdout
  .write(`Confidential inference on a local easyenclave network (from the repository root, after npm ci && npm run build):

  # 1. a control plane with an admin token
  export EE_ADMIN_TOKEN=$(openssl rand -hex 24)
  EE_CONTROL_BIND=127.0.0.1 EE_PROXY_BIND=127.0.0.1 EE_DB_PATH=/tmp/ee-inference.db npx ee control-plane &

  # 2. a provider with a node posting unit prices, and a user with $10 (prints node_token, unit_prices, user_api_key)
  node examples/confidential-inference/setup.mjs | tee /tmp/ee-inference.json

  # 3. the OpenAI-compatible backend (a deterministic stand-in for vLLM) on loopback :8082
  PORT=8082 node examples/confidential-inference/backend.mjs &

  # 4. an agent serving it, bound to the node, signing usage receipts at the node's prices (sandbox: development only)
  EE_CONTROL_WS=ws://127.0.0.1:8088/v1/tunnel EE_REPO=acme/inference EE_RELEASE_TAG=v1.0.0 \\
  EE_APP_NAME=inference EE_NETWORK=sandbox-1 EE_BACKEND_URL=http://127.0.0.1:8082 \\
  EE_NODE_TOKEN=$(jq -r .node_token /tmp/ee-inference.json) EE_UNIT_PRICES=$(jq -r .unit_prices /tmp/ee-inference.json) \\
  npx ee agent &

  # 5. the client: reserves $1, verifies the agent, sends sealed chat requests, prints answers and receipts
  EE_API_KEY=$(jq -r .user_api_key /tmp/ee-inference.json) EE_NETWORK=sandbox-1 \\
  node examples/confidential-inference/client.mjs

The last line shows the balance moving by exactly the sum of the signed receipts. The control plane relays only
ciphertext: see docs/confidential.md. Save a receipt and check it offline with: ee receipts verify <file>.
`);
