// @ts-check
/**
 * An app's own page inside HighLevel, end to end:
 *
 * 1. ask the parent window (HighLevel's app shell) for the signed-in user: `REQUEST_USER_DATA`;
 * 2. open a session on api-backend with the encrypted answer (`POST /api/sessions {"sso"}`);
 * 3. list and create products (with an image URL and a price), show the doctor's report, register the payment
 *    provider;
 * 4. show every refusal in the page: the problem's `code`, `detail` and `fix`, and for HighLevel's refusals the
 *    `diagnosis` (cause, detail, fix).
 *
 * Query parameters: `api` (api-backend's base URL; default http://127.0.0.1:8082, devstack's) and `location`
 * (the location to act on; default the session's own location, which an agency user does not have).
 */

import { ApiProblem, createClient } from './api.js';

/** @typedef {import('./api.js').Schemas} Schemas */
/** @typedef {import('./api.js').Problem} Problem */

const DEFAULT_API = 'http://127.0.0.1:8082';
const query = new URLSearchParams(window.location.search);
const api = createClient(query.get('api') || DEFAULT_API);

/** @type {Schemas['SessionOut'] | null} */
let session = null;

/**
 * An element of the page, by id.
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @returns {T}
 */
function el(id) {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return /** @type {T} */ (found);
}

/** @param {string} id */
const input = (id) => /** @type {HTMLInputElement} */ (el(id));

/**
 * The line at the top: what the page is doing, and a state tests and people can read.
 * @param {'starting' | 'busy' | 'ok' | 'refused'} state
 * @param {string} text
 */
function status(state, text) {
  const s = el('status');
  s.dataset.state = state;
  s.textContent = text;
}

/** Hides the last problem. */
function clearProblem() {
  el('problem').hidden = true;
}

/**
 * Shows a problem body in the page: api-backend's `title`, `status`, `code`, `detail`, `fix`, and HighLevel's
 * `diagnosis` when there is one (also on a `rolled_back` create, whose `cause` holds HighLevel's refusal).
 * @param {Problem} p
 */
function showProblem(p) {
  el('problem-title').textContent = p.title;
  el('problem-status').textContent = String(p.status);
  el('problem-code').textContent = p.code;
  el('problem-detail').textContent = p.cause ? `${p.detail} (cause: ${p.cause.detail})` : p.detail;
  el('problem-fix').textContent = p.fix ?? '';
  const d = p.diagnosis ?? p.cause?.diagnosis ?? null;
  el('diagnosis').hidden = !d;
  el('diagnosis-cause').textContent = d?.cause ?? '';
  el('diagnosis-detail').textContent = d?.detail ?? '';
  el('diagnosis-fix').textContent = d?.fix ?? '';
  el('problem-json').textContent = JSON.stringify(p, null, 2);
  el('problem').hidden = false;
  el('problem').scrollIntoView({ block: 'nearest' });
  status('refused', `Refused: ${p.code} (${p.status})`);
}

/**
 * Runs one action of the page: clears the last problem, and shows the new one if the action is refused. A session
 * that expired (401 `session_invalid`) is opened again from a fresh user context, once, and the action repeated.
 * @param {string} what
 * @param {() => Promise<string>} action answers the line to show when it succeeds
 */
async function run(what, action) {
  clearProblem();
  status('busy', `${what}…`);
  try {
    try {
      status('ok', await action());
    } catch (e) {
      if (!(session && e instanceof ApiProblem && e.status === 401 && e.problem.code === 'session_invalid')) throw e;
      await openSession();
      status('ok', await action());
    }
  } catch (e) {
    if (e instanceof ApiProblem) {
      showProblem(e.problem);
    } else {
      showProblem({
        type: 'about:blank',
        title: 'The page failed',
        status: 0,
        code: 'page_error',
        detail: e instanceof Error ? e.message : String(e),
      });
    }
  }
}

/**
 * Asks the parent window (HighLevel) for the signed-in user: posts `{message: "REQUEST_USER_DATA"}` (again every
 * second until answered) and resolves with the encrypted `payload` of `REQUEST_USER_DATA_RESPONSE`. Only the
 * parent window's answer counts. The payload is opaque here: only api-backend, which holds the app's Shared
 * Secret, can read it.
 * @param {number} [timeoutMs]
 * @returns {Promise<string>}
 */
export function requestUserData(timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    if (window.parent === window) {
      reject(new Error('This page is not inside HighLevel: open it from HighLevel (or the simulator\'s /_sim/app), which answers REQUEST_USER_DATA.'));
      return;
    }
    /** @param {MessageEvent} e */
    const onMessage = (e) => {
      if (e.source !== window.parent) return;
      let d = e.data;
      if (typeof d === 'string') {
        try {
          d = JSON.parse(d);
        } catch {
          return;
        }
      }
      if (d && d.message === 'REQUEST_USER_DATA_RESPONSE' && typeof d.payload === 'string') {
        done();
        resolve(d.payload);
      }
    };
    // The request carries no secret, and HighLevel runs on many (white-label) domains: any parent origin.
    const ask = () => window.parent.postMessage({ message: 'REQUEST_USER_DATA' }, '*');
    const again = setInterval(ask, 1000);
    const timer = setTimeout(() => {
      done();
      reject(new Error(`The parent window did not answer REQUEST_USER_DATA within ${timeoutMs / 1000} s.`));
    }, timeoutMs);
    function done() {
      clearInterval(again);
      clearTimeout(timer);
      window.removeEventListener('message', onMessage);
    }
    window.addEventListener('message', onMessage);
    ask();
  });
}

/** Opens a session from the user context HighLevel hands the page. */
async function openSession() {
  const sso = await requestUserData();
  const opened = await api.call('post', '/api/sessions', { body: { sso } });
  session = opened;
  api.token = opened.token;
  el('who').textContent = `Signed-in user: ${opened.userId} (${opened.role ?? 'no role'}) of company ${opened.companyId}`
    + (opened.locationId ? `, location ${opened.locationId}` : ', agency user');
  const location = input('location').value.trim() || query.get('location') || opened.locationId || '';
  input('location').value = location;
  el('workspace').hidden = false;
  return location;
}

/** The location the page acts on (the field at the top). */
function currentLocation() {
  const l = input('location').value.trim();
  if (!l) throw new Error('Type a location id first (an agency user may name any location of its company).');
  return l;
}

/**
 * A product's line in the list.
 * @param {Schemas['ProductOut']} p
 * @param {Schemas['PriceOut'][]} prices
 */
function productItem(p, prices) {
  const li = document.createElement('li');
  li.dataset.id = p.id;
  const img = document.createElement('img');
  img.alt = '';
  if (p.image) img.src = p.image;
  const name = document.createElement('strong');
  name.className = 'name';
  name.textContent = p.name;
  const price = document.createElement('span');
  price.className = 'prices';
  price.textContent = prices.map((x) => `${x.amount.toFixed(2)} ${x.currency}`).join(', ') || 'no price';
  li.append(img, name, price);
  return li;
}

/** Lists the location's products, each with its prices. */
async function loadProducts() {
  const locationId = currentLocation();
  const list = await api.call('get', '/api/locations/{locationId}/products', {
    params: { locationId },
    query: { limit: 20 },
  });
  const items = await Promise.all(list.products.map(async (p) => {
    const prices = await api.call('get', '/api/locations/{locationId}/products/{productId}/prices', {
      params: { locationId, productId: p.id },
    });
    return productItem(p, prices.prices);
  }));
  el('products').replaceChildren(...items);
  el('products-total').textContent = `(${list.total})`;
  return `${list.total} product(s) in ${locationId}`;
}

/** Creates a product with one image and one price (api-backend uploads, creates and prices, all or nothing). */
async function createProduct() {
  const locationId = currentLocation();
  const image = input('product-image').value.trim();
  const amount = Number(input('price-amount').value);
  const created = await api.call('post', '/api/locations/{locationId}/products', {
    params: { locationId },
    headers: { 'idempotency-key': crypto.randomUUID() },
    body: {
      name: input('product-name').value.trim(),
      productType: 'DIGITAL',
      images: image ? [image] : [],
      prices: [{ name: 'One-time', type: 'one_time', currency: input('price-currency').value.trim().toUpperCase(), amount }],
    },
  });
  await loadProducts();
  return `Created ${created.name} (${created.id}) in ${locationId}`;
}

/** The doctor's report: what the location's token is, what it may call, and what would fail and why. */
async function showDiagnostics() {
  const locationId = currentLocation();
  const report = await api.call('get', '/api/locations/{locationId}/diagnostics', { params: { locationId } });
  const lines = [
    `ok: ${report.ok}`,
    `installation ${report.installationId} (${report.installationState})`,
    `location token: ${report.locationToken ? `${report.locationToken.authClass} ${report.locationToken.authClassId ?? ''}` : 'none'}`,
    ...report.problems.map((d) => `problem: ${d.cause}: ${d.detail} Fix: ${d.fix}`),
    '',
    JSON.stringify(report, null, 2),
  ];
  el('diagnostics').textContent = lines.join('\n');
  el('diagnostics').dataset.ok = String(report.ok);
  return `Doctor's report for ${locationId}: ${report.ok ? 'nothing would fail' : `${report.problems.length} problem(s)`}`;
}

/** Registers the sandbox payment provider (needs an admin: others get 403 admin_required). */
async function changeProvider() {
  const locationId = currentLocation();
  const provider = await api.call('put', '/api/locations/{locationId}/payments/provider', {
    params: { locationId },
    body: {
      name: 'Sandbox',
      description: 'Test payments (example page)',
      imageUrl: 'https://picsum.photos/seed/pay/64',
      gateway: 'sandbox',
    },
  });
  el('provider-out').textContent = JSON.stringify(provider, null, 2);
  return `Payment provider registered for ${locationId}`;
}

/** @param {SubmitEvent} e */
const stop = (e) => e.preventDefault();

el('location-form').addEventListener('submit', (e) => { stop(/** @type {SubmitEvent} */ (e)); run('Loading products', loadProducts); });
el('create-form').addEventListener('submit', (e) => { stop(/** @type {SubmitEvent} */ (e)); run('Creating the product', createProduct); });
el('doctor').addEventListener('click', () => run("Asking for the doctor's report", showDiagnostics));
el('provider').addEventListener('click', () => run('Registering the payment provider', changeProvider));

run('Asking HighLevel for the user context', async () => {
  const location = await openSession();
  if (!location) return `Session open for ${session?.userId}: type a location id of your company.`;
  await loadProducts();
  return `Session open for ${session?.userId} in ${location}`;
});
