// `npm start`: the children's pino JSON log lines made readable on one terminal.

const LEVELS = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
export const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'svc']);
export const AGENT_HIDDEN = new Set([...HIDDEN, 'app', 'agent_id']); // the agent's logger repeats these on every line

/** One pino JSON line → "HH:MM:SS LEVEL message key=value ..."; anything else is printed as it is. */
export function readable(line, hidden, paint) {
  if (!line.startsWith('{')) return line;
  let o;
  try {
    o = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof o.level !== 'number') return line;
  const time = typeof o.time === 'number' ? new Date(o.time).toTimeString().slice(0, 8) : '';
  let level = LEVELS[o.level] ?? String(o.level);
  if (o.level >= 50) level = paint('31', level);
  else if (o.level >= 40) level = paint('33', level);
  const extra = [];
  for (const [k, v] of Object.entries(o)) {
    if (hidden.has(k) || v === undefined) continue;
    const value = k === 'err' && v && typeof v === 'object' ? (v.message ?? JSON.stringify(v)) : v;
    extra.push(
      `${k}=${typeof value === 'string' ? (/\s/.test(value) ? JSON.stringify(value) : value) : JSON.stringify(value)}`,
    );
  }
  return `${time} ${level} ${o.msg ?? ''}${extra.length ? `  ${paint('2', extra.join(' '))}` : ''}`;
}
