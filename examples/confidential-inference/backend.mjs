#!/usr/bin/env node
// A stand-in for vLLM: an OpenAI-compatible chat endpoint with a small deterministic generator, listening on
// loopback only (it is reached through an easyenclave agent, which opens sealed requests inside the enclave).
//   POST /v1/chat/completions  {messages, stream?, max_tokens?} → a chat.completion (or, with stream: true,
//                              Server-Sent Events of chat.completion.chunk, the last one with `usage`)
//   GET  /v1/models            → the one model
// Tokens are whitespace-separated words. The answer repeats the last user message's words backwards, so the
// same request always gets the same answer and the same usage. PORT (default 8082; 0 = any free port).
// Prints "listening <port>" once ready.
import http from 'node:http';

const MODEL = 'ee-echo-1';
const MAX_BODY_BYTES = 1 << 20;
const MAX_TOKENS = 4096;

const words = (s) =>
  String(s ?? '')
    .split(/\s+/)
    .filter(Boolean);

/** The deterministic "generation": the last user message's words, backwards, at most max_tokens of them. */
export function generate(messages, max_tokens = MAX_TOKENS) {
  const prompt_tokens = messages.reduce((n, m) => n + words(m.content).length, 0);
  const last = [...messages].reverse().find((m) => m.role === 'user');
  const out = words(last?.content).reverse().slice(0, Math.min(max_tokens, MAX_TOKENS));
  return {
    tokens: out,
    usage: { prompt_tokens, completion_tokens: out.length, total_tokens: prompt_tokens + out.length },
  };
}

const json = (res, status, body) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/v1/models')
    return json(res, 200, { object: 'list', data: [{ id: MODEL, object: 'model', owned_by: 'easyenclave' }] });
  if (req.method !== 'POST' || path !== '/v1/chat/completions')
    return json(res, 404, { error: { message: 'not found', type: 'invalid_request_error' } });
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY_BYTES) req.destroy();
    else chunks.push(c);
  });
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (!Array.isArray(body.messages)) throw new Error('messages must be an array');
    } catch (err) {
      return json(res, 400, { error: { message: `bad request: ${err.message}`, type: 'invalid_request_error' } });
    }
    const { tokens, usage } = generate(body.messages, body.max_tokens);
    const id = `chatcmpl-${usage.total_tokens}`;
    const created = 1_700_000_000;
    if (body.stream !== true) {
      return json(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model: MODEL,
        choices: [{ index: 0, message: { role: 'assistant', content: tokens.join(' ') }, finish_reason: 'stop' }],
        usage,
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const event = (o) => res.write(`data: ${JSON.stringify(o)}\n\n`);
    const chunk = (delta, finish_reason = null) =>
      event({
        id,
        object: 'chat.completion.chunk',
        created,
        model: MODEL,
        choices: [{ index: 0, delta, finish_reason }],
      });
    chunk({ role: 'assistant', content: '' });
    tokens.forEach((t, i) => chunk({ content: i === 0 ? t : ` ${t}` }));
    chunk({}, 'stop');
    event({ id, object: 'chat.completion.chunk', created, model: MODEL, choices: [], usage });
    res.end('data: [DONE]\n\n');
  });
});

server.listen(Number(process.env.PORT ?? 8082), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
