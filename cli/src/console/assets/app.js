// jetsaga console: a single-page app with no framework and no build step.
//
// Layout of this file: helpers (elements, SVG, the API client, formatting), the shell (session,
// navigation, banner, dialog, live updates), then one view per page: sign-in, sagas, saga,
// dead letters, reconcile, health, audit.
//
// Rules it keeps: every piece of data reaches the page through textContent or an attribute, never
// innerHTML; the page runs under "default-src 'self'", so there is no inline script or style and
// every handler is attached with addEventListener; elements a test looks for carry a stable
// data-testid.
'use strict';

(function () {
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const CANCEL_REASONS = ['voucher_rejected', 'points_rejected', 'payment_failed', 'stock_failed', 'timeout'];

  // ---------------------------------------------------------------------------------------------
  // Elements

  function setAttrs(el, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'testid') el.setAttribute('data-testid', v);
      else if (k === 'text') el.textContent = String(v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  /** An HTML element: h('td', {class: 'num'}, 'text', otherNode). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  /** An SVG element. */
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  /** A value as text: objects as JSON, nothing as ''. */
  function txt(v) {
    if (v === null || v === undefined) return '';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  }

  function badge(text, cls) {
    return h('span', { class: 'badge ' + (cls || text) }, text);
  }

  function upDown(up, testid) {
    return h('span', { class: 'badge ' + (up ? 'ok' : 'bad'), testid, 'data-up': String(!!up) }, up ? 'up' : 'down');
  }

  // ---------------------------------------------------------------------------------------------
  // Formatting (times are shown in UTC, as the CLI prints them)

  function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toISOString().slice(0, 19).replace('T', ' ');
  }

  function fmtClock(iso) {
    const d = new Date(iso);
    if (isNaN(d.getTime())) return '';
    return d.toISOString().slice(11, 23);
  }

  function fmtMoney(cents) {
    if (cents === null || cents === undefined) return '';
    const n = Number(cents);
    const sign = n < 0 ? '-' : '';
    const a = Math.abs(n);
    return sign + Math.floor(a / 100) + '.' + String(a % 100).padStart(2, '0');
  }

  function fmtMs(ms) {
    const n = Number(ms) || 0;
    if (n < 1000) return '+' + Math.round(n) + ' ms';
    if (n < 60000) return '+' + (n / 1000).toFixed(2) + ' s';
    return '+' + (n / 60000).toFixed(1) + ' min';
  }

  /** A datetime-local value, read as UTC, as RFC 3339; '' stays ''. */
  function localToRfc3339(v) {
    if (!v) return '';
    const d = new Date(v.length === 16 ? v + ':00Z' : v + 'Z');
    return isNaN(d.getTime()) ? '' : d.toISOString();
  }

  function todayUtc() {
    return new Date().toISOString().slice(0, 10);
  }

  // ---------------------------------------------------------------------------------------------
  // The API client

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, 'network', 'The console did not answer (' + e.message + ').');
    }
    if (res.status === 204) return null;
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      const code = (data && data.error) || 'http_' + res.status;
      const message = (data && data.message) || text || res.statusText || code;
      if (res.status === 401 && path !== '/api/session') {
        signedOut('Your session has ended: sign in again.');
      }
      throw new ApiError(res.status, code, message);
    }
    return data;
  }

  /** The words to show for a failed call; a refusal says so with the server's own message. */
  function failure(err) {
    if (err instanceof ApiError && err.status === 403) return 'Refused (403): ' + err.message;
    if (err instanceof ApiError && err.status) return err.message + ' (' + err.status + ' ' + err.code + ')';
    return err && err.message ? err.message : String(err);
  }

  // ---------------------------------------------------------------------------------------------
  // The shell

  const state = {
    session: null,
    view: null,
    renderToken: 0,
    live: null,
    lastLive: null,
    sagaFilters: { status: '', reason: '', overdue: false, customer: '', from: '', to: '' },
    auditFilters: { from: '', to: '', operator: '', kind: '' },
    reconcile: { date: null, settlement: null, fileName: '', result: null },
    openLetters: new Set(),
  };

  const $ = (id) => document.getElementById(id);
  const main = () => $('main');

  function canWrite() {
    return !!state.session && state.session.role === 'operator';
  }

  function showBanner(text, kind) {
    const b = $('banner');
    $('banner-text').textContent = text;
    b.classList.toggle('info', kind === 'info');
    b.hidden = false;
  }

  function hideBanner() {
    $('banner').hidden = true;
  }

  function showSession() {
    const who = $('who');
    const nav = $('nav');
    if (!state.session) {
      who.hidden = true;
      nav.hidden = true;
      return;
    }
    $('who-name').textContent = state.session.name;
    const role = $('who-role');
    role.textContent = state.session.role;
    role.className = 'role ' + state.session.role;
    role.setAttribute('data-role', state.session.role);
    who.hidden = false;
    nav.hidden = false;
  }

  async function refreshSession() {
    try {
      state.session = await api('GET', '/api/session');
    } catch (_) {
      // signedOut has run for a 401; anything else leaves the header as it was.
    }
    showSession();
  }

  function signedOut(message) {
    state.session = null;
    stopLive();
    showSession();
    if ($('dialog').open) $('dialog').close();
    renderSignIn(message);
  }

  function startLive() {
    stopLive();
    if (typeof EventSource === 'undefined') return;
    const es = new EventSource('/api/live');
    const mark = $('live');
    es.addEventListener('open', () => {
      mark.className = 'live on';
      mark.title = 'Live updates: connected';
    });
    es.addEventListener('error', () => {
      mark.className = 'live off';
      mark.title = 'Live updates: reconnecting';
    });
    es.addEventListener('change', (e) => {
      state.liveAt = Date.now();
      mark.dataset.events = String(Number(mark.dataset.events || 0) + 1);
      mark.dataset.last = e.data;
      if (e.data === state.lastLive) return;
      // The first figures refresh too: the page may have been read before a change they
      // already count.
      state.lastLive = e.data;
      refreshCurrent();
    });
    state.live = es;
    // Polling as a fallback: when no figures came for a while (a proxy that buffers the
    // stream, a server that cannot read them), the page is read again every few seconds.
    state.liveAt = Date.now();
    state.poll = setInterval(() => {
      if (Date.now() - state.liveAt > 10000) {
        mark.className = 'live off';
        mark.title = 'Live updates: no news for a while, polling';
        refreshCurrent();
      }
    }, 5000);
  }

  function stopLive() {
    if (state.live) state.live.close();
    if (state.poll) clearInterval(state.poll);
    state.poll = null;
    state.live = null;
    state.lastLive = null;
  }

  /** Re-reads the page on show after a live change, unless a dialog is open over it. */
  function refreshCurrent() {
    if (!state.view || !state.view.refresh || $('dialog').open) return;
    state.view.refresh().catch(() => {});
  }

  function parseHash() {
    const raw = location.hash.replace(/^#\/?/, '');
    const [path] = raw.split('?');
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
    return { name: parts[0] || 'sagas', args: parts.slice(1) };
  }

  const routes = {
    sagas: sagasView,
    saga: sagaView,
    'dead-letters': deadLettersView,
    reconcile: reconcileView,
    health: healthView,
    audit: auditView,
  };

  function route() {
    if (!state.session) {
      renderSignIn();
      return;
    }
    hideBanner();
    const r = parseHash();
    const name = routes[r.name] ? r.name : 'sagas';
    const navName = name === 'saga' ? 'sagas' : name;
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.view === navName) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const token = ++state.renderToken;
    const m = main();
    m.replaceChildren();
    m.setAttribute('data-view', name);
    const ctx = { alive: () => token === state.renderToken, args: r.args, main: m };
    state.view = routes[name](ctx);
    // A screen reader starts reading the new page, not the link that led there.
    m.focus({ preventScroll: true });
  }

  /** An area that shows a load failure in the view itself. */
  function viewError(err) {
    return h('p', { class: 'error-text', role: 'alert', testid: 'view-error' }, failure(err));
  }

  function viewerNote() {
    if (canWrite()) return null;
    return h(
      'p',
      { class: 'panel muted', testid: 'viewer-note' },
      'You are signed in as a viewer: you can look at everything here, but changes need an operator.'
    );
  }

  function writeButton(label, attrs, onClick) {
    const b = h('button', Object.assign({ type: 'button' }, attrs), label);
    if (!canWrite()) {
      b.disabled = true;
      b.title = 'Only an operator can do this';
    }
    b.addEventListener('click', onClick);
    return b;
  }

  // ---------------------------------------------------------------------------------------------
  // The dialog: a confirmation that says what will happen, an optional required reason, then the
  // result or the server's refusal in the same box.

  function openDialog(opts) {
    const dlg = $('dialog');
    const error = h('p', { class: 'error-text', role: 'alert', testid: 'dialog-error', hidden: true });
    const result = h('div', { testid: 'dialog-result', 'aria-live': 'polite' });
    let reason = null;
    const cancel = h('button', { type: 'button', class: 'secondary', testid: 'dialog-cancel' }, 'Cancel');
    const confirm = h(
      'button',
      { type: 'button', class: opts.danger ? 'danger' : '', testid: 'dialog-confirm' },
      opts.confirmLabel || 'Confirm'
    );
    const fields = [];
    if (opts.needReason) {
      reason = h('textarea', {
        id: 'dialog-reason',
        testid: 'dialog-reason',
        required: true,
        placeholder: 'Why: this goes into the audit with your name',
      });
      fields.push(h('label', { for: 'dialog-reason', class: 'field' }, 'Reason (required)'), reason);
      confirm.disabled = true;
      reason.addEventListener('input', () => {
        confirm.disabled = reason.value.trim() === '';
      });
    }
    let changed = false;
    const close = () => {
      dlg.close();
    };
    cancel.addEventListener('click', close);
    dlg.addEventListener(
      'close',
      () => {
        if (changed && opts.afterClose) opts.afterClose();
      },
      { once: true }
    );
    confirm.addEventListener('click', async () => {
      confirm.disabled = true;
      cancel.disabled = true;
      error.hidden = true;
      if (reason) reason.disabled = true;
      try {
        const nodes = await opts.onConfirm(reason ? reason.value.trim() : undefined);
        changed = true;
        result.replaceChildren();
        append(result, [nodes]);
        confirm.remove();
      } catch (err) {
        error.textContent = failure(err);
        error.hidden = false;
        if (err instanceof ApiError && err.status === 403) {
          showBanner(failure(err));
          confirm.remove();
          refreshSession().then(() => {
            changed = true;
          });
        } else {
          confirm.disabled = false;
          if (reason) reason.disabled = false;
        }
      }
      cancel.textContent = 'Close';
      cancel.setAttribute('data-testid', 'dialog-close');
      cancel.disabled = false;
      cancel.focus();
    });
    dlg.replaceChildren(
      h('h2', { id: 'dialog-title' }, opts.title),
      h('div', { testid: 'dialog-body' }, opts.body),
      ...fields,
      error,
      result,
      h('div', { class: 'buttons' }, cancel, confirm)
    );
    dlg.showModal();
    (reason || confirm).focus();
  }

  // ---------------------------------------------------------------------------------------------
  // Sign-in

  function renderSignIn(message) {
    state.view = null;
    state.renderToken++;
    const m = main();
    m.setAttribute('data-view', 'sign-in');
    const token = h('input', {
      type: 'password',
      id: 'signin-token',
      testid: 'signin-token',
      autocomplete: 'current-password',
      required: true,
    });
    const error = h('p', { class: 'error-text', role: 'alert', testid: 'signin-error', hidden: !message }, message || '');
    const form = h(
      'form',
      { testid: 'signin-form' },
      h('label', { for: 'signin-token', class: 'field' }, 'Operator or viewer token'),
      token,
      h('button', { type: 'submit', testid: 'signin-submit' }, 'Sign in'),
      error
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.hidden = true;
      try {
        state.session = await api('POST', '/api/session', { token: token.value });
        showSession();
        startLive();
        if (!location.hash || location.hash === '#/sign-in') location.hash = '#/sagas';
        route();
      } catch (err) {
        error.textContent =
          err instanceof ApiError && err.status === 401
            ? 'That token is not one of the console\u2019s operators or viewers.'
            : failure(err);
        error.hidden = false;
      }
    });
    m.replaceChildren(
      h(
        'div',
        { class: 'signin panel' },
        h('h1', null, 'Sign in'),
        h('p', { class: 'muted' }, 'Use the token you were given as an operator (ADMIN_TOKENS) or a viewer (VIEWER_TOKENS).'),
        form
      )
    );
    token.focus();
  }

  // ---------------------------------------------------------------------------------------------
  // Sagas: filters, the outcomes chart, the list paged by the server's cursor

  function sagasView(ctx) {
    const f = state.sagaFilters;
    const status = h(
      'select',
      { id: 'f-status', testid: 'filter-status' },
      ['', 'PENDING', 'CONFIRMED', 'CANCELLED'].map((v) => h('option', { value: v, selected: f.status === v }, v || 'any'))
    );
    const reason = h(
      'select',
      { id: 'f-reason', testid: 'filter-reason' },
      [''].concat(CANCEL_REASONS).map((v) => h('option', { value: v, selected: f.reason === v }, v || 'any'))
    );
    const overdue = h('input', { type: 'checkbox', id: 'f-overdue', testid: 'filter-overdue', checked: f.overdue });
    const customer = h('input', {
      type: 'text',
      id: 'f-customer',
      testid: 'filter-customer',
      value: f.customer,
      size: 38,
      placeholder: 'customer uuid',
    });
    const from = h('input', { type: 'datetime-local', id: 'f-from', testid: 'filter-from', value: f.from });
    const to = h('input', { type: 'datetime-local', id: 'f-to', testid: 'filter-to', value: f.to });
    const form = h(
      'form',
      { class: 'panel row', testid: 'sagas-filters', 'aria-label': 'Filters' },
      h('label', { class: 'field', for: 'f-status' }, 'Status', status),
      h('label', { class: 'field', for: 'f-reason' }, 'Cancel reason', reason),
      h('label', { class: 'field inline', for: 'f-overdue' }, overdue, 'Pending past deadline'),
      h('label', { class: 'field', for: 'f-customer' }, 'Customer', customer),
      h('label', { class: 'field', for: 'f-from' }, 'From (UTC)', from),
      h('label', { class: 'field', for: 'f-to' }, 'To (UTC)', to),
      h('button', { type: 'submit', testid: 'filter-apply' }, 'Apply'),
      h('button', { type: 'button', class: 'secondary', testid: 'filter-reset', onclick: reset }, 'Reset')
    );
    const chart = h('div', { class: 'panel chart', testid: 'outcomes' }, h('p', { class: 'muted' }, 'Loading outcomes…'));
    const count = h('p', { class: 'muted', testid: 'sagas-count', 'aria-live': 'polite' });
    const tbody = h('tbody', { testid: 'sagas-rows' });
    const more = h('button', { type: 'button', class: 'secondary', testid: 'sagas-more', hidden: true }, 'More');
    const errorBox = h('div');
    const table = h(
      'table',
      { testid: 'sagas-table' },
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          ['Order', 'Status', 'Cancel reason', 'Total', 'Customer', 'Created (UTC)'].map((t) =>
            h('th', { scope: 'col', class: t === 'Total' ? 'num' : null }, t)
          )
        )
      ),
      tbody
    );
    append(ctx.main, [h('h1', null, 'Sagas'), chart, form, errorBox, count, table, h('p', null, more)]);

    let rows = [];
    let next = null;

    function readForm() {
      f.status = status.value;
      f.reason = reason.value;
      f.overdue = overdue.checked;
      f.customer = customer.value.trim();
      f.from = from.value;
      f.to = to.value;
    }

    function reset() {
      Object.assign(f, { status: '', reason: '', overdue: false, customer: '', from: '', to: '' });
      status.value = '';
      reason.value = '';
      overdue.checked = false;
      customer.value = '';
      from.value = '';
      to.value = '';
      load(false).catch(() => {});
    }

    function query(after, limit) {
      const q = new URLSearchParams();
      if (f.status) q.set('status', f.status);
      if (f.reason) q.set('reason', f.reason);
      if (f.overdue) q.set('overdue', 'true');
      if (f.customer) q.set('customer', f.customer);
      if (f.from) q.set('from', localToRfc3339(f.from));
      if (f.to) q.set('to', localToRfc3339(f.to));
      if (after) q.set('after', after);
      q.set('limit', String(limit));
      return '/api/sagas?' + q.toString();
    }

    function row(sg) {
      return h(
        'tr',
        { testid: 'saga-row', 'data-order-id': sg.order_id, 'data-status': sg.status },
        h('td', null, h('a', { href: '#/saga/' + encodeURIComponent(sg.order_id), class: 'mono', testid: 'saga-link' }, sg.order_id)),
        h('td', null, badge(sg.status), sg.overdue ? [' ', badge('overdue', 'warn')] : null),
        h('td', { testid: 'saga-reason' }, sg.cancel_reason || ''),
        h('td', { class: 'num' }, fmtMoney(sg.total_cents)),
        h('td', { class: 'mono' }, sg.customer_id),
        h('td', null, fmtTime(sg.created_at))
      );
    }

    function show() {
      tbody.replaceChildren(...rows.map(row));
      if (rows.length === 0) {
        tbody.append(h('tr', null, h('td', { colspan: 6, class: 'muted', testid: 'sagas-empty' }, 'No saga matches these filters.')));
      }
      count.textContent = 'Showing ' + rows.length + (rows.length === 1 ? ' saga' : ' sagas') + (next ? ' (more below)' : '') + ', newest first.';
      more.hidden = !next;
    }

    /** The first page again (or as many rows as were shown, up to 200), or the next page. */
    async function load(appendPage) {
      errorBox.replaceChildren();
      try {
        const limit = appendPage ? 50 : Math.min(200, Math.max(50, rows.length));
        const data = await api('GET', query(appendPage ? next : null, limit));
        if (!ctx.alive()) return;
        rows = appendPage ? rows.concat(data.sagas) : data.sagas;
        next = data.next || null;
        show();
      } catch (err) {
        if (ctx.alive()) errorBox.replaceChildren(viewError(err));
      }
    }

    async function loadChart() {
      try {
        const data = await api('GET', '/api/outcomes?minutes=60');
        if (!ctx.alive()) return;
        chart.replaceChildren(...outcomesChart(data.minutes || [], 60));
      } catch (err) {
        if (ctx.alive()) chart.replaceChildren(viewError(err));
      }
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      readForm();
      rows = [];
      load(false);
    });
    more.addEventListener('click', () => load(true));
    load(false);
    loadChart();
    return {
      refresh: async () => {
        await Promise.all([load(false), loadChart()]);
      },
    };
  }

  /** Outcomes per minute over the last `span` minutes as stacked bars (confirmed, cancelled). */
  function outcomesChart(minutes, span) {
    const byMinute = new Map();
    for (const m of minutes) {
      const t = Math.floor(new Date(m.minute).getTime() / 60000);
      byMinute.set(t, m);
    }
    const now = Math.floor(Date.now() / 60000);
    const bars = [];
    let confirmed = 0;
    let cancelled = 0;
    let max = 1;
    for (let i = span - 1; i >= 0; i--) {
      const t = now - i;
      const m = byMinute.get(t) || { confirmed: 0, cancelled: 0 };
      confirmed += m.confirmed;
      cancelled += m.cancelled;
      max = Math.max(max, m.confirmed + m.cancelled);
      bars.push({ t, confirmed: m.confirmed, cancelled: m.cancelled });
    }
    const W = 1400;
    const H = 190;
    const left = 44;
    const bottom = 24;
    const top = 10;
    const plotH = H - bottom - top;
    const bw = (W - left - 10) / span;
    const y = (v) => top + plotH - (v / max) * plotH;
    const svg = s('svg', {
      viewBox: '0 0 ' + W + ' ' + H,
      role: 'img',
      testid: 'outcomes-chart',
      'aria-label': 'Outcomes per minute over the last ' + span + ' minutes: ' + confirmed + ' confirmed, ' + cancelled + ' cancelled',
    });
    svg.append(
      s('line', { x1: left, x2: W - 10, y1: top + plotH, y2: top + plotH, stroke: '#8c959f' }),
      s('line', { x1: left, x2: left, y1: top, y2: top + plotH, stroke: '#8c959f' }),
      s('text', { x: left - 6, y: top + 10, 'text-anchor': 'end', 'font-size': 11, fill: '#57606a' }, String(max)),
      s('text', { x: left - 6, y: top + plotH, 'text-anchor': 'end', 'font-size': 11, fill: '#57606a' }, '0')
    );
    bars.forEach((b, i) => {
      const x = left + i * bw + 1;
      const g = s('g', { testid: 'outcomes-bar', 'data-confirmed': b.confirmed, 'data-cancelled': b.cancelled });
      const label = new Date(b.t * 60000).toISOString().slice(11, 16) + ' UTC: ' + b.confirmed + ' confirmed, ' + b.cancelled + ' cancelled';
      g.append(s('title', null, label));
      if (b.confirmed > 0) {
        g.append(s('rect', { x, width: Math.max(1, bw - 2), y: y(b.confirmed), height: top + plotH - y(b.confirmed), fill: '#2da44e' }));
      }
      if (b.cancelled > 0) {
        const base = y(b.confirmed);
        g.append(s('rect', { x, width: Math.max(1, bw - 2), y: base - (top + plotH - y(b.cancelled)), height: top + plotH - y(b.cancelled), fill: '#cf222e' }));
      }
      // A transparent column so that the tooltip shows on empty minutes too.
      g.append(s('rect', { x, width: Math.max(1, bw - 2), y: top, height: plotH, fill: 'transparent' }));
      svg.append(g);
      if ((b.t % 10) === 0) {
        svg.append(
          s('text', { x: x + bw / 2, y: H - 6, 'text-anchor': 'middle', 'font-size': 11, fill: '#57606a' }, new Date(b.t * 60000).toISOString().slice(11, 16))
        );
      }
    });
    return [
      h(
        'div',
        { class: 'row' },
        h('h2', null, 'Outcomes per minute, last hour (UTC)'),
        h(
          'div',
          { class: 'legend' },
          h('span', null, h('span', { class: 'swatch confirmed' }), 'confirmed ', h('strong', { testid: 'outcomes-confirmed' }, String(confirmed))),
          h('span', null, h('span', { class: 'swatch cancelled' }), 'cancelled ', h('strong', { testid: 'outcomes-cancelled' }, String(cancelled)))
        )
      ),
      svg,
    ];
  }

  // ---------------------------------------------------------------------------------------------
  // A saga: facts, the reconciler's verdict, the sequence diagram, a step's headers and payload

  function sagaView(ctx) {
    const id = ctx.args[0] || '';
    const box = h('div', null, h('p', { class: 'muted' }, 'Loading saga…'));
    append(ctx.main, [h('p', null, h('a', { href: '#/sagas', testid: 'back-to-sagas' }, '\u2190 Sagas')), box]);
    let selected = null;

    async function load() {
      try {
        const data = await api('GET', '/api/sagas/' + encodeURIComponent(id));
        if (!ctx.alive()) return;
        render(data);
      } catch (err) {
        if (!ctx.alive()) return;
        if (err instanceof ApiError && err.status === 404) {
          box.replaceChildren(h('h1', null, 'Saga not found'), h('p', { testid: 'saga-missing' }, 'No saga has the id ' + id + '.'));
        } else {
          box.replaceChildren(viewError(err));
        }
      }
    }

    function render(data) {
      const order = data.order || {};
      const sum = data.summary || {};
      const steps = data.steps || [];
      const detail = h('div', { class: 'panel', testid: 'step-detail' }, h('p', { class: 'muted' }, 'Select a step in the diagram to see its headers and payload.'));
      const facts = h(
        'dl',
        { class: 'facts', testid: 'saga-facts' },
        fact('Status', [badge(sum.status || order.status || '?'), sum.cancel_reason ? ' ' + sum.cancel_reason : ''], 'saga-status'),
        fact('Customer', h('span', { class: 'mono' }, order.customer_id || '')),
        fact('Total', fmtMoney(order.total_cents)),
        order.discount_cents ? fact('Discount', fmtMoney(order.discount_cents)) : null,
        order.points_spent ? fact('Points spent', String(order.points_spent)) : null,
        fact('Items', (order.items || []).map((it) => (it.sku || '?') + ' \u00d7 ' + (it.quantity ?? '?')).join(', ')),
        fact('Events', String(sum.events ?? steps.length)),
        fact('Duration', sum.duration_ms === null || sum.duration_ms === undefined ? '' : Math.round(sum.duration_ms) + ' ms'),
        fact('Trace id', h('span', { class: 'mono' }, data.trace_id || 'none recorded'), 'trace-id')
      );
      const verdict = data.verdict;
      const judged = !!verdict && (!verdict.state || verdict.state === 'judged');
      const verdictBox = h(
        'div',
        { class: 'panel', testid: 'verdict', 'data-clean': String(!!(verdict && verdict.clean)), 'data-state': verdict ? verdict.state || 'judged' : 'none' },
        h('h2', null, 'Reconciler'),
        !verdict
          ? h('p', { class: 'muted' }, 'Not judged: the order database does not know this order.')
          : !judged
          ? h('p', null, badge(verdict.state, 'PENDING'), ' The saga is still ' + verdict.state + ': the reconciler judges it once it has settled.')
          : verdict.clean
          ? h('p', null, badge('clean', 'ok'), ' The reconciler finds nothing wrong with this saga.')
          : h(
              'ul',
              null,
              (verdict.differences || []).map((d) =>
                h('li', { testid: 'verdict-difference' }, badge(d.kind, 'bad'), ' ', d.service + ': ', d.detail, d.repair ? h('span', { class: 'muted' }, ' (repair: ' + d.repair + ')') : null)
              )
            )
      );
      const select = (n) => {
        selected = n;
        for (const g of diagramSvg.querySelectorAll('.step')) g.classList.toggle('selected', Number(g.dataset.n) === n);
        const step = steps.find((st) => st.n === n);
        if (step) detail.replaceChildren(...stepDetail(step, steps));
      };
      const diagramSvg = sequenceDiagram(steps, data.services || [], select);
      box.replaceChildren(
        h('h1', null, 'Saga ', h('span', { class: 'mono', testid: 'saga-id' }, order.order_id || id)),
        h('div', { class: 'saga-top' }, h('div', { class: 'panel' }, facts), verdictBox),
        h(
          'div',
          { class: 'saga-main' },
          h(
            'div',
            { class: 'panel diagram', testid: 'diagram' },
            h('h2', null, 'Sequence'),
            h('p', { class: 'muted' }, 'One lane per service; each arrow is an event, from the service that emitted it to the services that reacted to it. Left: time since the previous step. Select a step for its headers and payload.'),
            diagramSvg
          ),
          detail
        )
      );
      if (selected !== null) select(selected);
    }

    function fact(k, v, testid) {
      return [h('dt', null, k), h('dd', { testid }, v)];
    }

    load();
    return { refresh: load };
  }

  function eventColour(event) {
    if (/cancel|fail|reject/.test(event)) return '#cf222e';
    if (/release|refund/.test(event)) return '#9a6700';
    return '#0b5cad';
  }

  /** The steps as a sequence diagram: a lane per service, an arrow per step from its producer. */
  function sequenceDiagram(steps, services, onSelect) {
    const lanes = services.slice();
    for (const st of steps) if (!lanes.includes(st.service)) lanes.push(st.service);
    const gutter = 120;
    const laneW = 150;
    const head = 44;
    const rowH = 48;
    const W = gutter + laneW * lanes.length + 20;
    const H = head + 16 + rowH * steps.length + 16;
    const x = (svc) => gutter + laneW * lanes.indexOf(svc) + laneW / 2;
    const svg = s('svg', {
      width: W,
      height: H,
      viewBox: '0 0 ' + W + ' ' + H,
      role: 'group',
      'aria-label': 'Sequence diagram of ' + steps.length + ' steps across ' + lanes.length + ' services',
      testid: 'sequence-diagram',
      'font-family': 'DejaVu Sans, sans-serif',
    });
    for (const svc of lanes) {
      const cx = x(svc);
      svg.append(
        s('line', { x1: cx, x2: cx, y1: head, y2: H - 8, stroke: '#afb8c1', 'stroke-dasharray': '4 4' }),
        s('rect', { x: cx - 62, y: 6, width: 124, height: 30, rx: 6, fill: '#14202e', testid: 'lane', 'data-service': svc }),
        s('text', { x: cx, y: 26, 'text-anchor': 'middle', fill: '#ffffff', 'font-size': 14, 'font-weight': 'bold' }, svc)
      );
    }
    svg.append(s('text', { x: 8, y: 26, 'font-size': 12, fill: '#57606a' }, 'time (UTC)'));
    steps.forEach((st, i) => {
      const y = head + 16 + rowH * i + rowH / 2 + 4;
      const from = x(st.service);
      const consumers = [];
      for (const other of steps) {
        if (other.caused_by === st.n && other.service !== st.service && !consumers.includes(other.service)) consumers.push(other.service);
      }
      const colour = eventColour(st.event);
      const g = s('g', {
        class: 'step',
        tabindex: 0,
        role: 'button',
        testid: 'step',
        'data-n': st.n,
        'data-event': st.event,
        'data-service': st.service,
        'aria-label': 'Step ' + st.n + ': ' + st.event + ' from ' + st.service + (consumers.length ? ' to ' + consumers.join(', ') : ''),
      });
      g.append(
        s('rect', { class: 'hit', x: 0, y: y - rowH / 2 - 4, width: W, height: rowH, fill: 'transparent' }),
        s('text', { x: 8, y: y - 6, 'font-size': 12, fill: '#1b1f24', testid: 'step-gap' }, i === 0 ? 'start' : fmtMs(st.since_previous_ms)),
        s('text', { x: 8, y: y + 10, 'font-size': 11, fill: '#57606a' }, fmtClock(st.time))
      );
      let labelX;
      let anchor;
      if (consumers.length === 0) {
        // No service of this saga reacted to it (yet): a short arrow that ends in a circle.
        const dir = lanes.indexOf(st.service) === lanes.length - 1 ? -1 : 1;
        const end = from + dir * 56;
        g.append(
          s('line', { x1: from, x2: end, y1: y, y2: y, stroke: colour, 'stroke-width': 2 }),
          s('circle', { cx: end, cy: y, r: 4, fill: '#ffffff', stroke: colour, 'stroke-width': 2 })
        );
        labelX = from + dir * 8;
        anchor = dir > 0 ? 'start' : 'end';
      } else {
        const xs = consumers.map(x);
        const lo = Math.min(from, ...xs);
        const hi = Math.max(from, ...xs);
        g.append(s('line', { x1: lo, x2: hi, y1: y, y2: y, stroke: colour, 'stroke-width': 2 }));
        for (const tx of xs) {
          const d = tx > from ? 1 : -1;
          g.append(s('path', { d: 'M' + tx + ' ' + y + ' L' + (tx - d * 9) + ' ' + (y - 5) + ' L' + (tx - d * 9) + ' ' + (y + 5) + ' Z', fill: colour }));
        }
        const right = xs.filter((tx) => tx > from).length >= xs.filter((tx) => tx < from).length;
        labelX = from + (right ? 8 : -8);
        anchor = right ? 'start' : 'end';
      }
      g.append(
        s('circle', { cx: from, cy: y, r: 5, fill: colour }),
        s('text', { x: labelX, y: y - 7, 'text-anchor': anchor, 'font-size': 12, fill: colour, 'font-weight': 'bold' }, st.n + '. ' + st.event)
      );
      if (st.outcome) {
        g.append(s('text', { x: labelX, y: y + 15, 'text-anchor': anchor, 'font-size': 11, fill: '#57606a' }, st.outcome));
      }
      const pick = () => onSelect(st.n);
      g.addEventListener('click', pick);
      g.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          pick();
        }
      });
      svg.append(g);
    });
    return svg;
  }

  function stepDetail(st, steps) {
    const cause = st.caused_by ? steps.find((o) => o.n === st.caused_by) : null;
    const headers = st.headers || {};
    return [
      h('h2', { testid: 'step-title' }, 'Step ' + st.n + ': ' + st.event),
      h(
        'dl',
        { class: 'facts' },
        h('dt', null, 'Service'),
        h('dd', null, st.service),
        h('dt', null, 'Time (UTC)'),
        h('dd', null, fmtTime(st.time) + ' (' + fmtMs(st.since_previous_ms) + ' after the previous step)'),
        h('dt', null, 'Caused by'),
        h('dd', null, cause ? 'step ' + cause.n + ' (' + cause.event + ')' : 'nothing in this saga (an API call or a timer)'),
        st.outcome ? [h('dt', null, 'Outcome'), h('dd', null, st.outcome)] : null,
        h('dt', null, 'Event id'),
        h('dd', { class: 'mono' }, st.event_id || ''),
        h('dt', null, 'Stream'),
        h('dd', { class: 'mono' }, (st.stream || '') + (st.stream_seq ? ' #' + st.stream_seq : ''))
      ),
      h('h3', null, 'Headers'),
      h(
        'table',
        { testid: 'step-headers' },
        h('tbody', null, Object.entries(headers).map(([k, v]) => h('tr', null, h('th', { scope: 'row', class: 'mono' }, k), h('td', { class: 'mono' }, typeof v === 'string' ? v : JSON.stringify(v)))))
      ),
      h('h3', null, 'Payload'),
      h('pre', { class: 'payload', testid: 'step-payload' }, JSON.stringify(st.payload, null, 2)),
    ];
  }

  // ---------------------------------------------------------------------------------------------
  // Dead letters: grouped by consumer and failure, requeue or discard one or a group with a reason

  function deadLettersView(ctx) {
    const summary = h('p', { class: 'muted', testid: 'dl-summary', 'aria-live': 'polite' }, 'Loading dead letters…');
    const list = h('div', { testid: 'dl-groups' });
    append(ctx.main, [h('h1', null, 'Dead letters'), viewerNote(), summary, list]);

    async function load() {
      try {
        const data = await api('GET', '/api/dead-letters');
        if (!ctx.alive()) return;
        render(data.groups || []);
      } catch (err) {
        if (ctx.alive()) list.replaceChildren(viewError(err));
      }
    }

    function render(groups) {
      const letters = groups.reduce((n, g) => n + (g.letters ? g.letters.length : g.count || 0), 0);
      summary.textContent =
        groups.length === 0 ? '' : letters + (letters === 1 ? ' open dead letter' : ' open dead letters') + ' in ' + groups.length + (groups.length === 1 ? ' group.' : ' groups.');
      if (groups.length === 0) {
        list.replaceChildren(h('p', { class: 'panel', testid: 'dl-empty' }, 'No open dead letters.'));
        return;
      }
      list.replaceChildren(...groups.map(group));
    }

    function group(g) {
      const letters = g.letters || [];
      const refs = letters.map((l) => l.service + ':' + l.id);
      return h(
        'section',
        { class: 'group', testid: 'dl-group', 'data-key': g.key, 'data-consumer': g.consumer, 'data-service': g.service, 'aria-label': 'Dead letters of ' + g.consumer },
        h(
          'div',
          { class: 'group-head' },
          h('span', { class: 'title' }, g.consumer),
          h('span', { class: 'muted' }, '(' + g.service + ')'),
          badge(g.kind, 'bad'),
          h('span', { class: 'reason', testid: 'dl-reason' }, g.reason),
          h('span', { class: 'spacer' }),
          h('span', { testid: 'dl-count' }, g.count + (g.count === 1 ? ' letter' : ' letters')),
          writeButton('Requeue all', { class: 'small', testid: 'dl-group-requeue' }, () => act('requeue', { group: g.key }, g, refs)),
          writeButton('Discard all', { class: 'small danger', testid: 'dl-group-discard' }, () => act('discard', { group: g.key }, g, refs))
        ),
        letters.map((l) => letter(l, g))
      );
    }

    function letter(l, g) {
      const ref = l.service + ':' + l.id;
      const details = h(
        'details',
        { open: state.openLetters.has(ref) },
        h('summary', null, 'Raw message and audit'),
        h('h3', null, 'Message' + (l.raw_encoding === 'base64' ? ' (binary, base64)' : '')),
        h('pre', { class: 'payload', testid: 'dl-raw' }, l.raw),
        l.headers && Object.keys(l.headers).length
          ? [
              h('h3', null, 'Headers'),
              h('table', { testid: 'dl-headers' }, h('tbody', null, Object.entries(l.headers).map(([k, v]) => h('tr', null, h('th', { scope: 'row', class: 'mono' }, k), h('td', { class: 'mono' }, typeof v === 'string' ? v : JSON.stringify(v)))))),
            ]
          : null,
        l.stream ? h('p', { class: 'muted' }, 'From ' + l.stream + (l.stream_seq ? ' #' + l.stream_seq : '') + (l.reason && l.reason !== g.reason ? '; ' + l.reason : '')) : null,
        h('h3', null, 'Audit'),
        l.audit && l.audit.length
          ? h('ul', { testid: 'dl-audit' }, l.audit.map((a) => h('li', null, auditLine(a))))
          : h('p', { class: 'muted', testid: 'dl-audit' }, 'No action taken on it yet.')
      );
      details.addEventListener('toggle', () => {
        if (details.open) state.openLetters.add(ref);
        else state.openLetters.delete(ref);
      });
      return h(
        'div',
        { class: 'letter', testid: 'dl-letter', 'data-ref': ref },
        h('strong', { class: 'mono' }, ref),
        ' ',
        h('span', { class: 'mono' }, l.subject),
        h('span', { class: 'muted' }, ' \u00b7 ' + l.attempts + (l.attempts === 1 ? ' attempt' : ' attempts') + ' \u00b7 ' + fmtTime(l.created_at) + ' UTC'),
        h(
          'span',
          { class: 'actions' },
          writeButton('Requeue', { class: 'small secondary', testid: 'dl-requeue' }, () => act('requeue', { letters: [{ service: l.service, id: l.id }] }, g, [ref])),
          writeButton('Discard', { class: 'small secondary', testid: 'dl-discard' }, () => act('discard', { letters: [{ service: l.service, id: l.id }] }, g, [ref]))
        ),
        details
      );
    }

    function act(action, target, g, refs) {
      const many = refs.length !== 1;
      const what =
        action === 'requeue'
          ? 'Each is published again to its subject under a new message id, keeping its event id, so ' +
            g.consumer +
            ' handles it once more; one that fails again comes back as a new dead letter.'
          : 'Each is marked discarded and is not published again; it stays on record with its audit.';
      openDialog({
        title: (action === 'requeue' ? 'Requeue ' : 'Discard ') + (many ? refs.length + ' dead letters' : 'dead letter ' + refs[0]),
        body: [
          h('p', null, 'Consumer ', h('strong', null, g.consumer), ' (' + g.service + '), ' + g.kind + ': ' + g.reason),
          h('p', null, what),
          h('p', { class: 'muted' }, 'Letters: ' + refs.join(', ')),
          h('p', { class: 'muted' }, 'Your name (' + state.session.name + ') and reason go into the audit of each.'),
        ],
        confirmLabel: action === 'requeue' ? 'Requeue' : 'Discard',
        danger: action === 'discard',
        needReason: true,
        onConfirm: async (reason) => {
          const res = await api('POST', '/api/dead-letters/' + action, Object.assign({ reason }, target));
          const done = res.done || [];
          const failed = res.failed || [];
          return [
            h('p', { testid: 'dl-done' }, (action === 'requeue' ? 'Requeued: ' : 'Discarded: ') + done.length + (done.length ? ' (' + done.map((d) => d.service + ':' + d.id).join(', ') + ')' : '')),
            failed.length
              ? h('ul', { class: 'error-text', testid: 'dl-failed' }, failed.map((x) => h('li', null, x.service + ':' + x.id + ': ' + x.message)))
              : null,
          ];
        },
        afterClose: () => load(),
      });
    }

    load();
    return { refresh: load };
  }

  function auditLine(a) {
    if (!a || typeof a !== 'object') return String(a);
    const when = a.at || a.time || a.created_at;
    const parts = [when ? fmtTime(when) + ' UTC' : null, a.action, a.actor || a.operator ? 'by ' + (a.actor || a.operator) : null, a.reason ? '\u201c' + a.reason + '\u201d' : null, a.new_msg_id ? 'as ' + a.new_msg_id : null];
    const known = parts.filter(Boolean);
    return known.length ? known.join(' \u00b7 ') : JSON.stringify(a);
  }

  // ---------------------------------------------------------------------------------------------
  // Reconcile: a business date, an optional settlement file, the differences, a confirmed repair

  function reconcileView(ctx) {
    const r = state.reconcile;
    if (r.date === null) r.date = todayUtc();
    const date = h('input', { type: 'date', id: 'rec-date', testid: 'rec-date', value: r.date });
    const file = h('input', { type: 'file', id: 'rec-file', testid: 'rec-file', accept: '.csv,text/csv,text/plain' });
    const fileNote = h('span', { class: 'muted', testid: 'rec-file-note' }, r.fileName ? 'Loaded ' + r.fileName : 'No settlement file: the databases are checked against each other.');
    const clearFile = h('button', { type: 'button', class: 'small secondary fit', hidden: !r.fileName }, 'Remove file');
    const check = h('button', { type: 'submit', testid: 'rec-check' }, 'Check');
    const form = h(
      'form',
      { class: 'panel row', testid: 'rec-form' },
      h('label', { class: 'field', for: 'rec-date' }, 'Business date (UTC; empty: every order)', date),
      h('label', { class: 'field', for: 'rec-file' }, 'Settlement file (CSV, optional)', file),
      h('div', { class: 'field' }, fileNote, clearFile),
      check
    );
    const out = h('div', { testid: 'rec-result', 'aria-live': 'polite' });
    append(ctx.main, [h('h1', null, 'Reconcile'), viewerNote(), form, out]);

    file.addEventListener('change', async () => {
      const f = file.files && file.files[0];
      if (!f) return;
      r.settlement = await f.text();
      r.fileName = f.name;
      fileNote.textContent = 'Loaded ' + f.name + ' (' + r.settlement.split('\n').filter((l) => l.trim()).length + ' lines)';
      clearFile.hidden = false;
    });
    clearFile.addEventListener('click', () => {
      r.settlement = null;
      r.fileName = '';
      file.value = '';
      fileNote.textContent = 'No settlement file: the databases are checked against each other.';
      clearFile.hidden = true;
    });

    async function run() {
      r.date = date.value;
      check.disabled = true;
      out.replaceChildren(h('p', { class: 'muted', testid: 'rec-running' }, 'Checking ' + (r.date || 'every order') + '…'));
      try {
        r.result = await api('POST', '/api/reconcile', { date: r.date || null, settlement: r.settlement });
        if (ctx.alive()) show();
      } catch (err) {
        if (ctx.alive()) out.replaceChildren(viewError(err));
      } finally {
        check.disabled = false;
      }
    }

    function show() {
      const res = r.result;
      if (!res) return;
      const diffs = res.differences || [];
      const repairable = diffs.filter((d) => d.repairable);
      const day = res.date || 'every day';
      const checked = res.orders_checked !== undefined && res.orders_checked !== null ? res.orders_checked + (res.orders_checked === 1 ? ' order checked' : ' orders checked') : '';
      const unsettled = [res.running ? res.running + ' still running' : '', res.settling ? res.settling + ' settling' : ''].filter(Boolean).join(', ');
      const note = [checked, unsettled ? unsettled + ' (not judged yet)' : ''].filter(Boolean).join('; ');
      if (res.clean || diffs.length === 0) {
        out.replaceChildren(h('p', { class: 'panel', testid: 'rec-clean' }, badge('clean', 'ok'), ' ' + day + ': no difference found.' + (note ? ' ' + note + '.' : '')));
        return;
      }
      const repair = writeButton('Repair ' + repairable.length + '\u2026', { testid: 'rec-repair', class: 'danger' }, () => confirmRepair(res, repairable, diffs));
      if (repairable.length === 0) repair.disabled = true;
      out.replaceChildren(
        h(
          'div',
          { class: 'row' },
          h('h2', { testid: 'rec-summary' }, diffs.length + (diffs.length === 1 ? ' difference' : ' differences') + ' on ' + day + ', ' + repairable.length + ' repairable'),
          note ? h('span', { class: 'muted' }, note) : null,
          repair
        ),
        h(
          'table',
          { testid: 'rec-table' },
          h('thead', null, h('tr', null, ['Kind', 'Service', 'Order (or row)', 'Detail', 'Repair'].map((t) => h('th', { scope: 'col' }, t)))),
          h(
            'tbody',
            null,
            diffs.map((d) =>
              h(
                'tr',
                { testid: 'rec-diff', 'data-kind': d.kind, 'data-id': txt(d.id), 'data-order-id': d.order_id || '', 'data-repairable': String(!!d.repairable) },
                h('td', null, badge(d.kind, 'bad')),
                h('td', null, d.service),
                h('td', null, d.order_id ? h('a', { href: '#/saga/' + encodeURIComponent(d.order_id), class: 'mono' }, d.order_id) : h('span', { class: 'mono muted', title: txt(d.id) }, txt(d.id).split('/').pop())),
                h('td', null, d.detail),
                h('td', null, d.repairable ? d.repair || 'repairable' : h('span', { class: 'muted' }, 'needs a person'))
              )
            )
          )
        )
      );
    }

    function confirmRepair(res, repairable, diffs) {
      const left = diffs.length - repairable.length;
      openDialog({
        title: 'Repair ' + repairable.length + (repairable.length === 1 ? ' difference' : ' differences') + (res.date ? ' on ' + res.date : ''),
        body: [
          h('p', null, 'Each repair is an ordinary compensating event, written by the owning service with its change in one transaction. This will:'),
          h('ul', { testid: 'rec-plan' }, repairable.map((d) => h('li', null, (d.repair || d.kind) + ' \u2014 ' + d.service + (d.order_id ? ', order ' + d.order_id : '')))),
          left ? h('p', null, left + (left === 1 ? ' difference needs' : ' differences need') + ' a person and will be left as it is.') : null,
          h('p', { class: 'muted' }, 'The repairs are signed by ' + state.session.name + '.'),
        ],
        confirmLabel: 'Repair',
        danger: true,
        onConfirm: async () => {
          const done = await api('POST', '/api/reconcile/repair', { date: res.date || null, settlement: r.settlement, confirm: true });
          const repaired = done.repaired || [];
          const notDone = done.left || [];
          return [
            h('p', { testid: 'rec-repaired', 'data-count': repaired.length }, 'Repaired ' + repaired.length + ' by ' + done.by + '.'),
            repaired.length ? h('ul', null, repaired.map((x) => h('li', null, x.detail, x.event_type ? h('span', { class: 'muted' }, ' \u2192 ' + x.event_type) : null))) : null,
            done.in_flight ? h('p', { class: 'muted' }, done.in_flight + ' follow-on effects in flight: the next check shows them settled.') : null,
            notDone.length
              ? [h('p', null, 'Left as they are:'), h('ul', { testid: 'rec-left' }, notDone.map((x) => h('li', null, x.detail + ' \u2014 ' + x.why)))]
              : null,
          ];
        },
        afterClose: () => run(),
      });
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      run();
    });
    show();
    // A check is an action with a date and maybe a file: live changes do not re-run it.
    return { refresh: null };
  }

  // ---------------------------------------------------------------------------------------------
  // Health

  function healthView(ctx) {
    const box = h('div', { class: 'services', testid: 'health' }, h('p', { class: 'muted' }, 'Loading health…'));
    const natsError = h('div');
    append(ctx.main, [h('h1', null, 'Health'), natsError, box]);

    async function load() {
      try {
        const data = await api('GET', '/api/health');
        if (!ctx.alive()) return;
        box.replaceChildren(...(data.services || []).map(card));
        natsError.replaceChildren();
        if (data.nats_error) natsError.append(h('p', { class: 'banner', role: 'alert', testid: 'health-nats-error' }, 'NATS: ' + data.nats_error));
      } catch (err) {
        if (ctx.alive()) box.replaceChildren(viewError(err));
      }
    }

    function number(k, v, testid) {
      return h('div', null, h('span', { class: 'k' }, k), h('span', { class: 'v' + (v > 0 ? ' alert' : ''), testid }, String(v ?? '?')));
    }

    // A size on disk as `jetsaga stats` shows it: `512 B`, `8.1 MB`, `15.0 GB`.
    function size(k, bytes, testid) {
      let shown = '?';
      if (bytes != null) {
        const units = ['B', 'kB', 'MB', 'GB', 'TB'];
        let value = Math.max(bytes, 0);
        let unit = 0;
        while (value >= 1024 && unit < units.length - 1) {
          value /= 1024;
          unit += 1;
        }
        shown = unit === 0 ? bytes + ' B' : value.toFixed(1) + ' ' + units[unit];
      }
      return h('div', null, h('span', { class: 'k' }, k), h('span', { class: 'v', testid, 'data-bytes': String(bytes ?? '') }, shown));
    }

    function card(svc) {
      const consumers = svc.consumers || [];
      const instances = svc.instances || [];
      return h(
        'section',
        { class: 'panel service', testid: 'health-service', 'data-service': svc.service, 'aria-label': svc.service },
        h('h2', null, svc.service, h('span', { class: 'k-inline' }, 'database'), upDown(svc.database, 'health-db'), h('span', { class: 'k-inline' }, 'NATS'), upDown(svc.nats, 'health-nats')),
        svc.database_error ? h('p', { class: 'error-text', testid: 'health-db-error' }, 'Database: ' + txt(svc.database_error)) : null,
        h('div', { class: 'kv' }, number('outbox backlog', svc.outbox_backlog, 'health-backlog'), number('parked', svc.parked, 'health-parked'), number('open dead letters', svc.dead_letters_open, 'health-dead-letters'), size('database', svc.database_bytes, 'health-db-size'), size('outbox+inbox', svc.outbox_inbox_bytes, 'health-outbox-inbox-size')),
        h(
          'p',
          { testid: 'health-instances' },
          h('span', { class: 'muted' }, 'Instances: '),
          instances.length ? instances.map((i) => [badge(i.instance + (i.ready ? ' ready' : ' not ready'), i.ready ? 'ok' : 'bad'), ' ']) : h('span', { class: 'muted' }, 'none found')
        ),
        consumers.length
          ? h(
              'table',
              { testid: 'health-consumers' },
              h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Consumer'), h('th', { scope: 'col', class: 'num' }, 'Lag'), h('th', { scope: 'col', class: 'num' }, 'Pending acks'), h('th', { scope: 'col' }, 'Read'))),
              h('tbody', null, consumers.map((c) => h('tr', { 'data-consumer': c.name }, h('td', { class: 'mono' }, c.name), h('td', { class: 'num' }, String(c.lag)), h('td', { class: 'num' }, String(c.pending_acks)), h('td', { testid: 'health-consumer-read' }, c.nobody_pulls ? badge('nobody pulls', 'bad') : h('span', { class: 'muted' }, 'pulled')))))
            )
          : null
      );
    }

    load();
    return { refresh: load };
  }

  // ---------------------------------------------------------------------------------------------
  // Audit

  function auditView(ctx) {
    const f = state.auditFilters;
    const from = h('input', { type: 'datetime-local', id: 'a-from', testid: 'audit-from', value: f.from });
    const to = h('input', { type: 'datetime-local', id: 'a-to', testid: 'audit-to', value: f.to });
    const operator = h('input', { type: 'text', id: 'a-operator', testid: 'audit-operator', value: f.operator, placeholder: 'any' });
    const kind = h('select', { id: 'a-kind', testid: 'audit-kind' }, h('option', { value: '' }, 'any'), f.kind ? h('option', { value: f.kind, selected: true }, f.kind) : null);
    const form = h(
      'form',
      { class: 'panel row', testid: 'audit-filters' },
      h('label', { class: 'field', for: 'a-from' }, 'From (UTC)', from),
      h('label', { class: 'field', for: 'a-to' }, 'To (UTC)', to),
      h('label', { class: 'field', for: 'a-operator' }, 'Operator', operator),
      h('label', { class: 'field', for: 'a-kind' }, 'Kind', kind),
      h('button', { type: 'submit', testid: 'audit-apply' }, 'Apply')
    );
    const out = h('div', { testid: 'audit-result' }, h('p', { class: 'muted' }, 'Loading audit…'));
    append(ctx.main, [h('h1', null, 'Audit'), form, out]);
    const seenKinds = new Set();

    async function load() {
      const q = new URLSearchParams();
      if (f.from) q.set('from', localToRfc3339(f.from));
      if (f.to) q.set('to', localToRfc3339(f.to));
      if (f.operator) q.set('operator', f.operator);
      if (f.kind) q.set('kind', f.kind);
      try {
        const data = await api('GET', '/api/audit?' + q.toString());
        if (!ctx.alive()) return;
        const entries = data.entries || [];
        for (const k of (data.kinds || []).concat(entries.map((e) => e.kind))) {
          if (k && !seenKinds.has(k)) {
            seenKinds.add(k);
            if (k !== f.kind) kind.append(h('option', { value: k }, k));
          }
        }
        if (entries.length === 0) {
          out.replaceChildren(h('p', { class: 'panel muted', testid: 'audit-empty' }, 'No admin change or operator action matches.'));
          return;
        }
        out.replaceChildren(
          h('p', { class: 'muted' }, entries.length + (entries.length === 1 ? ' entry' : ' entries') + ', times in UTC.'),
          h(
            'table',
            { testid: 'audit-table' },
            h('thead', null, h('tr', null, ['Time (UTC)', 'Operator', 'Kind', 'Service', 'About', 'Outcome', 'Where'].map((t) => h('th', { scope: 'col' }, t)))),
            h(
              'tbody',
              null,
              entries.map((e) =>
                h(
                  'tr',
                  { testid: 'audit-row', 'data-operator': e.operator, 'data-kind': e.kind },
                  h('td', null, fmtTime(e.time)),
                  h('td', null, h('strong', null, txt(e.operator))),
                  h('td', null, txt(e.kind)),
                  h('td', null, txt(e.service)),
                  h('td', { class: 'mono' }, txt(e.subject || e.about)),
                  h('td', null, txt(e.outcome)),
                  h('td', { class: 'muted' }, txt(e.detail))
                )
              )
            )
          )
        );
      } catch (err) {
        if (ctx.alive()) out.replaceChildren(viewError(err));
      }
    }

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      f.from = from.value;
      f.to = to.value;
      f.operator = operator.value.trim();
      f.kind = kind.value;
      load();
    });
    load();
    return { refresh: load };
  }

  // ---------------------------------------------------------------------------------------------
  // Start

  async function boot() {
    $('banner-close').addEventListener('click', hideBanner);
    $('sign-out').addEventListener('click', async () => {
      try {
        await api('DELETE', '/api/session');
      } catch (_) {
        // Signed out either way.
      }
      signedOut('Signed out.');
    });
    window.addEventListener('hashchange', route);
    try {
      state.session = await api('GET', '/api/session');
    } catch (_) {
      state.session = null;
    }
    showSession();
    if (state.session) startLive();
    route();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
