// Calls to the site's API, from the same origin only. A bearer token, when signed in with one, is kept
// in this module's memory: never in storage, a cookie or the page's address.

let token = null;

/** Signs in with `value` (a bearer token), or with the browser's certificate when `value` is null. */
export function useToken(value) {
  token = value;
}

/** A refusal or failure, with the API's own message (OpenAI's error format). */
export class ApiError extends Error {
  constructor(status, payload) {
    const error = payload && payload.error;
    super(error && error.message ? error.message : `the site answered ${status} without a reason`);
    this.status = status;
    this.code = error ? error.code : null;
  }
}

/** The response to a request to `path` on this site. */
export async function call(path, { method = "GET", body, headers = {}, signal } = {}) {
  const sent = { ...headers };
  if (token) sent.Authorization = `Bearer ${token}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  try {
    return await fetch(path, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "same-origin",
      cache: "no-store",
      redirect: "error",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { error: { message: "the site could not be reached; check the network and try again" } });
  }
}

/** The JSON answer to a request, or an ApiError carrying the API's message. */
export async function json(path, options) {
  const response = await call(path, options);
  const payload = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}
