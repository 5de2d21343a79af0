// The one test of "a JSON object" (not null, not an array) that every reader of untyped JSON
// (RPC requests and answers, config files, lvstore metadata) narrows with.
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
