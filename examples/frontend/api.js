// @ts-check
/**
 * A tiny fetch wrapper for api-backend, typed by `api-types.d.ts` (generated from api-backend's OpenAPI document
 * by scripts/gen-frontend-client.sh). The types live in JSDoc, so the page stays plain JavaScript with no build
 * step; `tsc --checkJs` (run by that script) checks every call the page makes against the API.
 *
 *   const api = createClient("http://127.0.0.1:8082");
 *   const session = await api.call("post", "/api/sessions", { body: { sso } });
 *   api.token = session.token;
 *   const list = await api.call("get", "/api/locations/{locationId}/products", {
 *     params: { locationId: "L" }, query: { limit: 20 } });
 *
 * Every answer that is not a 2xx is thrown as an {@link ApiProblem} holding api-backend's problem body (RFC 9457:
 * `code`, `detail`, `fix`, and `diagnosis` on HighLevel's refusals).
 */

/** @typedef {import('./api-types').paths} Paths */
/** @typedef {import('./api-types').components['schemas']} Schemas */
/** @typedef {Schemas['Problem'] & {cause?: Schemas['Problem'], highlevel?: unknown, leftovers?: string[]}} Problem */
/** @typedef {'get' | 'post' | 'put' | 'delete'} Method */

/**
 * The methods a path has.
 * @template {keyof Paths} P
 * @typedef {{[M in Method]: Paths[P][M] extends {responses: any} ? M : never}[Method]} MethodOf
 */

/**
 * The operation behind a path and a method.
 * @template {keyof Paths} P
 * @template {MethodOf<P>} M
 * @typedef {Paths[P][M] extends infer O ? (O extends {responses: any} ? O : never) : never} Op
 */

/**
 * The JSON body an operation takes.
 * @template O
 * @typedef {O extends {requestBody: {content: {'application/json': infer B}}} ? B
 *   : O extends {requestBody?: {content: {'application/json': infer B}}} ? B : never} BodyOf
 */

/**
 * The JSON an operation answers on success (200 or 201; undefined for a 204).
 * @template O
 * @typedef {O extends {responses: {200: {content: {'application/json': infer B}}}} ? B
 *   : O extends {responses: {201: {content: {'application/json': infer B}}}} ? B : undefined} AnswerOf
 */

/**
 * What a call takes besides its method and path.
 * @template O
 * @typedef {{
 *   params?: O extends {parameters: {path: infer X}} ? X : never,
 *   query?: O extends {parameters: {query?: infer Q}} ? Q : never,
 *   body?: BodyOf<O>,
 *   headers?: Record<string, string>,
 * }} Options
 */

/** api-backend refused a call (or could not be reached): the problem body, as api-backend sent it. */
export class ApiProblem extends Error {
  /**
   * @param {number} status the HTTP status (0: no answer at all)
   * @param {Problem} problem
   */
  constructor(status, problem) {
    super(`${problem.code}: ${problem.detail}`);
    this.name = 'ApiProblem';
    this.status = status;
    this.problem = problem;
  }
}

/**
 * A problem for an answer that never came: a network failure, or the browser hiding the answer because this
 * page's origin is not in api-backend's CORS_ALLOWED_ORIGINS.
 * @param {string} url
 * @param {unknown} error
 * @returns {ApiProblem}
 */
function unreachable(url, error) {
  return new ApiProblem(0, {
    type: 'about:blank',
    title: 'api-backend did not answer',
    status: 0,
    code: 'network_error',
    detail: `${url}: ${error instanceof Error ? error.message : String(error)}`,
    fix: "Check that api-backend runs at this address and that this page's origin is listed in its CORS_ALLOWED_ORIGINS.",
  });
}

/**
 * A client for api-backend at `baseUrl`. Set `token` (a session token from `POST /api/sessions`) before calling
 * the location routes.
 * @param {string} baseUrl
 */
export function createClient(baseUrl) {
  const base = baseUrl.replace(/\/+$/, '');
  const client = {
    /** @type {string | null} */
    token: null,
    base,
    /**
     * Calls `method path`, with `{name}` segments of the path filled from `params`.
     * @template {keyof Paths} P
     * @template {MethodOf<P>} M
     * @param {M} method
     * @param {P} path
     * @param {Options<Op<P, M>>} [options]
     * @returns {Promise<AnswerOf<Op<P, M>>>}
     */
    async call(method, path, options = {}) {
      /** @type {Record<string, unknown>} */
      const params = options.params ?? {};
      const filled = String(path).replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(String(params[name] ?? '')));
      const url = new URL(base + filled);
      for (const [k, v] of Object.entries(options.query ?? {})) {
        if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
      }
      /** @type {Record<string, string>} */
      const headers = { accept: 'application/json', ...(options.headers ?? {}) };
      if (client.token) headers.authorization = `Bearer ${client.token}`;
      /** @type {RequestInit} */
      const init = { method: method.toUpperCase(), headers };
      if (options.body !== undefined) {
        headers['content-type'] = 'application/json';
        init.body = JSON.stringify(options.body);
      }
      let res;
      try {
        res = await fetch(url, init);
      } catch (e) {
        throw unreachable(url.toString(), e);
      }
      const text = await res.text();
      /** @type {any} */
      let json;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      if (!res.ok) {
        const problem = json && typeof json.code === 'string'
          ? json
          : {
              type: 'about:blank',
              title: res.statusText || 'Error',
              status: res.status,
              code: 'unexpected_answer',
              detail: text.slice(0, 500) || `HTTP ${res.status}`,
            };
        throw new ApiProblem(res.status, problem);
      }
      return json;
    },
  };
  return client;
}
