// Calls to the API, from the page's own origin. The session cookie (HttpOnly) is the only
// credential: no token is ever kept, so a script injected into the page has none to steal.
// fetch() sends `Origin` on a write and `Sec-Fetch-Site: same-origin` on every request, which is
// what the API's cross-site checks accept from its own pages (web/same_origin.py).

/** An answer that is not a success: the API's own words (`data`) and its field errors. */
export class ApiFailure extends Error {
  constructor(status, body) {
    super(body && typeof body.data === "string" ? body.data : `The service answered ${status}`);
    this.status = status;
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
  }
}

let unauthorized = async () => {};
/**
 * `handler(path)` runs when an answer is 401, before its failure is thrown: auth.js asks whether the
 * session has ended (or whether only a password typed here was wrong).
 */
export function whenUnauthorized(handler) {
  unauthorized = handler;
}

function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * `method path` with an optional JSON body, or a file (`file`, a Blob sent as its bytes with
 * `type` as its Content-Type), and any other `headers` (`If-Match`); the parsed answer, or throws
 * ApiFailure.
 */
export async function call(method, path, { query, body, file, type, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (file !== undefined) {
    init.headers["Content-Type"] = type;
    init.body = file;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(withQuery(path, query), init);
  } catch {
    throw new ApiFailure(0, { data: "The service cannot be reached" });
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch { parsed = null; }
  }
  if (!response.ok) {
    if (response.status === 401) await unauthorized(path);
    throw new ApiFailure(response.status, parsed);
  }
  return parsed;
}

export const get = (path, query) => call("GET", path, { query });
export const post = (path, body, query) => call("POST", path, { body, query });
export const del = (path, body) => call("DELETE", path, { body });
