// The console page: preact + htm (no build step), uPlot for the charts.
// Everything it shows comes from /console/api/; actions carry the session's CSRF token.
import { h, render } from 'preact';
import { useEffect, useRef, useState, useCallback } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';

const html = htm.bind(h);
const POLL_MS = 2000;
let csrf = '';

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, body) {
  const init = body === undefined
    ? { headers: { accept: 'application/json' } }
    : { method: 'POST', headers: { 'content-type': 'application/json', 'x-console-csrf': csrf }, body: JSON.stringify(body) };
  const res = await fetch(`/console/api/${path}`, { credentials: 'same-origin', ...init });
  const data = await res.json().catch(() => ({}));
  if (!res.ok && !(res.status === 422 && data.errors)) throw new ApiError(res.status, data.error ?? `the hub answered ${res.status}`);
  return data;
}

const time = (iso) => (iso ? new Date(iso).toLocaleString() : '');
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

function usePage() {
  const read = () => {
    const [page, ...rest] = location.hash.slice(1).split('/');
    return { page: page || 'flow', arg: decodeURIComponent(rest.join('/')) };
  };
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onHash = () => setRoute(read());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  return route;
}

/** Poll `path` every POLL_MS while the page is shown; returns [data, error]. */
function usePoll(path) {
  const [state, setState] = useState({ data: undefined, error: undefined });
  useEffect(() => {
    let stopped = false;
    let timer;
    const tick = async () => {
      try {
        const data = await api(path);
        if (!stopped) setState({ data, error: undefined });
      } catch (err) {
        if (!stopped) setState((s) => ({ data: s.data, error: err.message }));
      }
      if (!stopped) timer = setTimeout(tick, POLL_MS);
    };
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [path]);
  return [state.data, state.error];
}

function SignIn({ onSignedIn }) {
  const [error, setError] = useState('');
  const submit = async (event) => {
    event.preventDefault();
    const token = event.currentTarget.elements.token.value;
    try {
      const { csrf: token_ } = await api('signin', { token });
      csrf = token_;
      onSignedIn();
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<main class="signin card">
    <h1>notification-hub console</h1>
    <form onSubmit=${submit}>
      <label>Console token (HUB_CONSOLE_TOKEN)<input name="token" type="password" autocomplete="current-password" required autofocus /></label>
      <p><button type="submit">Sign in</button></p>
      ${error && html`<p class="notice error" role="alert">${error}</p>`}
    </form>
  </main>`;
}

function Chart({ channel, minutes, series }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const element = box.current;
    const width = () => Math.max(240, element.clientWidth);
    plot.current = new uPlot(
      {
        width: width(),
        height: 160,
        legend: { show: true },
        scales: { y: { range: (_u, _min, max) => [0, Math.max(4, max)] } },
        axes: [{}, { size: 40 }],
        series: [
          {},
          { label: 'sent', stroke: '#1f8a4c', width: 2 },
          { label: 'retrying', stroke: '#b7791f', width: 2 },
          { label: 'dead', stroke: '#c53030', width: 2 },
        ],
      },
      [minutes, series.sent, series.retrying, series.dead],
      element,
    );
    const resize = new ResizeObserver(() => plot.current.setSize({ width: width(), height: 160 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current.destroy();
    };
  }, []);
  useEffect(() => plot.current?.setData([minutes, series.sent, series.retrying, series.dead]), [minutes, series]);
  const total = (kind) => series[kind].reduce((a, b) => a + b, 0);
  return html`<div class="card" data-channel=${channel}>
    <h2>${channel}</h2>
    <div class="legend">last hour, per minute: ${total('sent')} sent, ${total('retrying')} retrying, ${total('dead')} dead</div>
    <div ref=${box}></div>
  </div>`;
}

function channelState(c) {
  if (c.down) return html`<span class="bad">down: ${c.down}</span>`;
  if (c.workers === 0) return html`<span class="warn">no live worker: deliveries wait</span>`;
  return html`<span class="ok">running</span>`;
}

function Flow() {
  const [data, error] = usePoll('flow');
  if (!data) return html`<p class="loading">${error ?? 'Loading…'}</p>`;
  const { streams, series, mapping } = data;
  const names = [...new Set([...streams.channels.map((c) => c.channel), ...Object.keys(series.channels)])].sort();
  const empty = { sent: series.minutes.map(() => 0), retrying: series.minutes.map(() => 0), dead: series.minutes.map(() => 0) };
  return html`
    <h1>Flow</h1>
    ${error && html`<p class="notice error">Not updating: ${error}</p>`}
    <div class="cards">
      <div class="card"><div class="label">mapping in force</div><div class="value mono" id="mapping-revision">${mapping.revision ?? 'none'}</div>${mapping.problem && html`<div class="warn">${mapping.problem}</div>`}</div>
      <div class="card"><div class="label">hubs alive</div><div class="value">${streams.hubs}</div></div>
      <div class="card"><div class="label">waiting in ${streams.ingress.stream}</div><div class="value">${streams.ingress.lag + streams.ingress.pending}</div></div>
      <div class="card"><div class="label">dead letters</div><div class="value"><a href="#dead">${streams.dead}</a></div></div>
    </div>
    <h2>Channels</h2>
    <div class="card scroll"><table id="channels">
      <thead><tr><th>channel</th><th class="num">backlog</th><th class="num hide-narrow">in progress</th><th class="num">workers</th><th>state</th></tr></thead>
      <tbody>${streams.channels.map((c) => html`<tr data-channel=${c.channel}>
        <td>${c.channel}</td><td class="num">${c.lag}</td><td class="num hide-narrow">${c.pending}</td><td class="num">${c.workers}</td><td>${channelState(c)}</td></tr>`)}
      </tbody></table></div>
    <h2>Outcomes</h2>
    <div class="charts">${names.map((name) => html`<${Chart} key=${name} channel=${name} minutes=${series.minutes} series=${series.channels[name] ?? empty} />`)}</div>`;
}

function Fields({ fields }) {
  return html`<dl class="fields">${Object.entries(fields).filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => html`<dt>${k}</dt><dd>${Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v)}</dd>`)}</dl>`;
}

function Trace({ arg }) {
  const [status, setStatus] = useState(undefined);
  const [error, setError] = useState('');
  const load = useCallback(async (id) => {
    setError('');
    setStatus(undefined);
    if (!id) return;
    try {
      setStatus(await api(`trace?id=${encodeURIComponent(id)}`));
    } catch (err) {
      setError(err.message);
    }
  }, []);
  useEffect(() => void load(arg), [arg]);
  const submit = (event) => {
    event.preventDefault();
    const id = event.currentTarget.elements.id.value.trim();
    if (`#trace/${encodeURIComponent(id)}` === location.hash) load(id);
    else location.hash = `#trace/${encodeURIComponent(id)}`;
  };
  const { deliveries = [], deadLetters = [], escalation, acknowledged, entry, heldIn = [], digest, ...rest } = status ?? {};
  return html`
    <h1>Message trace</h1>
    <form class="row" onSubmit=${submit}>
      <label>Entry id or producer id<input name="id" value=${arg} placeholder="1717171717171-0 or your id" size="32" /></label>
      <button type="submit">Find</button>
    </form>
    ${error && html`<p class="notice error" role="alert">${error}</p>`}
    ${status && html`
      <section class="card" id="message"><h2>Message <code>${entry}</code></h2><${Fields} fields=${rest} /></section>
      <section class="card scroll" id="deliveries"><h2>Targets and attempts</h2>
        ${deliveries.length === 0 ? html`<p class="label">${heldIn.length ? 'None: held for the digest below.' : digest ? 'None yet: the digest goes out when its window closes.' : 'None.'}</p>` : html`<table><thead><tr><th>channel</th><th>target</th><th>state</th><th class="num">attempts</th><th>peer's answer</th></tr></thead>
        <tbody>${deliveries.map((d) => html`<tr data-target=${d.target}>
          <td>${d.channel}${d.escalation ? html` <span class="warn">(reminder, round ${d.escalation})</span>` : ''}</td>
          <td><code>${d.target}</code></td>
          <td class=${`state-${d.state}`}>${d.state}</td>
          <td class="num">${d.attempts ?? 0}</td>
          <td>${d.peerId && html`<div>id <code class="peer-id">${d.peerId}</code></div>`}
            ${d.details && html`<${Fields} fields=${d.details} />`}
            ${d.error && html`<div class="error">${d.error}</div>`}
            ${d.history?.length > 0 && html`<details><summary>${plural(d.history.length, 'attempt')}</summary><ol>${d.history.map((a) => html`<li>${time(a.at)}: ${a.result}${a.error ? html` <span class="error">${a.error}</span>` : ''}</li>`)}</ol></details>`}
          </td></tr>`)}</tbody></table>`}
      </section>
      ${heldIn.length > 0 && html`<section class="card" id="held"><h2>Held for a digest</h2><ul>${heldIn.map((d) => html`<li>
        <a href=${`#trace/${d.id}`}>${d.id}</a> of ${d.group}, key <code>${d.key}</code>: ${d.state}${d.sentAt ? ` ${time(d.sentAt)}` : d.closesAt ? `, closes ${time(d.closesAt)}` : ''} (${plural(d.held, 'message')} held)</li>`)}</ul></section>`}
      ${digest && html`<section class="card" id="digest"><h2>Digest</h2><${Fields} fields=${digest} /></section>`}
      ${escalation && html`<section class="card" id="escalation"><h2>Escalation</h2><${Fields} fields=${escalation} /></section>`}
      ${acknowledged && html`<section class="card"><h2>Acknowledged</h2><${Fields} fields=${acknowledged} /></section>`}
      ${deadLetters.length > 0 && html`<section class="card"><h2>Dead letters</h2>${deadLetters.map((l) => html`<${Fields} fields=${l} />`)}</section>`}`}`;
}

function Confirm({ ask, onYes, onNo }) {
  return html`<div class="confirm" role="dialog" aria-label="confirm"><p>${ask}</p>
    <button class="danger" onClick=${onYes}>Yes, do it</button><button class="secondary" onClick=${onNo}>Cancel</button></div>`;
}

function DeadLetters() {
  const [filter, setFilter] = useState({ channel: '', reason: '', since: '', until: '' });
  const [data, setData] = useState(undefined);
  const [selected, setSelected] = useState(new Set());
  const [open, setOpen] = useState(undefined);
  const [asking, setAsking] = useState(undefined);
  const [said, setSaid] = useState(undefined);
  const query = () => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v) q.set(k, k === 'since' || k === 'until' ? new Date(v).toISOString() : v);
    return q;
  };
  const load = async () => {
    try {
      setData(await api(`dead?${query()}`));
    } catch (err) {
      setSaid({ error: true, text: err.message });
    }
  };
  useEffect(() => void load(), []);
  const filterBody = () => Object.fromEntries(query());
  const act = (verb, body, count) => setAsking({
    ask: `${verb === 'replay' ? 'Replay' : 'Purge for good'} ${count}?`,
    run: async () => {
      setAsking(undefined);
      try {
        const result = await api(`dead/${verb}`, body);
        setSaid({ text: verb === 'replay'
          ? `Replayed ${plural(result.replayed, 'dead letter')}${result.skipped ? `; ${result.skipped} skipped (replayed or purged meanwhile, or refused)` : ''}.`
          : `Purged ${plural(result.purged, 'dead letter')}.` });
        setSelected(new Set());
        await load();
      } catch (err) {
        setSaid({ error: true, text: err.message });
      }
    },
  });
  const toggle = (id) => setSelected((s) => { const next = new Set(s); next.has(id) ? next.delete(id) : next.add(id); return next; });
  const set = (name) => (event) => setFilter({ ...filter, [name]: event.currentTarget.value });
  const letters = data?.letters ?? [];
  const chosen = [...selected];
  return html`
    <h1>Dead letters</h1>
    <form class="row" onSubmit=${(e) => { e.preventDefault(); setSelected(new Set()); load(); }}>
      <label>Channel<select name="channel" value=${filter.channel} onChange=${set('channel')}><option value="">any</option>${(data?.channels ?? []).map((c) => html`<option value=${c}>${c}</option>`)}</select></label>
      <label>Reason contains<input name="reason" value=${filter.reason} onInput=${set('reason')} /></label>
      <label>Since<input name="since" type="datetime-local" value=${filter.since} onInput=${set('since')} /></label>
      <label>Until<input name="until" type="datetime-local" value=${filter.until} onInput=${set('until')} /></label>
      <button type="submit">Filter</button>
    </form>
    ${said && html`<p class=${`notice${said.error ? ' error' : ''}`} role="status" id="said">${said.text}</p>`}
    <div class="row">
      <button disabled=${chosen.length === 0} onClick=${() => act('replay', { ids: chosen }, plural(chosen.length, 'selected dead letter'))}>Replay selected</button>
      <button class="secondary" disabled=${!data?.matched} onClick=${() => act('replay', { filter: filterBody() }, `all ${plural(data.matched, 'dead letter')} matching the filter`)}>Replay all matching</button>
      <button class="danger" disabled=${chosen.length === 0} onClick=${() => act('purge', { ids: chosen }, plural(chosen.length, 'selected dead letter'))}>Purge selected</button>
      <button class="danger" disabled=${!data?.matched} onClick=${() => act('purge', { filter: filterBody() }, `all ${plural(data.matched, 'dead letter')} matching the filter`)}>Purge all matching</button>
    </div>
    <p class="legend">${data ? `${data.matched} matching${data.complete ? '' : ' among the newest looked at'}${data.matched > letters.length ? `, the newest ${letters.length} shown` : ''}` : 'Loading…'}</p>
    <div class="card scroll"><table id="letters">
      <thead><tr><th></th><th>died</th><th>where</th><th>reason</th></tr></thead>
      <tbody>${letters.map((l) => html`<tr data-letter=${l.id}>
        <td><input type="checkbox" aria-label=${`select ${l.id}`} checked=${selected.has(l.id)} onChange=${() => toggle(l.id)} /></td>
        <td>${time(l.at)}</td>
        <td>${l.stage === 'ingress' ? 'ingress' : html`${l.channel} <code>${l.target}</code>`}</td>
        <td><a href="#dead" onClick=${(e) => { e.preventDefault(); setOpen(open === l.id ? undefined : l.id); }}>${l.reason}</a>
          ${open === l.id && html`<div class="original"><${Fields} fields=${l} /><a href=${`#trace/${encodeURIComponent(l.entry)}`}>trace of ${l.entry}</a></div>`}</td>
      </tr>`)}</tbody></table>
      ${data && letters.length === 0 && html`<p>No dead letters${data.matched === 0 && Object.values(filter).some(Boolean) ? ' match the filter' : ''}.</p>`}
    </div>
    ${asking && html`<${Confirm} ask=${asking.ask} onYes=${asking.run} onNo=${() => setAsking(undefined)} />`}`;
}

function Mapping() {
  const [data, setData] = useState(undefined);
  const [text, setText] = useState('');
  const [result, setResult] = useState(undefined);
  const [revisions, setRevisions] = useState([]);
  const [diff, setDiff] = useState(undefined);
  const [asking, setAsking] = useState(false);
  const load = async () => {
    const mapping = await api('mapping');
    setData(mapping);
    setText(JSON.stringify(mapping.document, null, 2));
    setRevisions(await api('mapping/revisions'));
  };
  useEffect(() => void load().catch((err) => setResult({ message: err.message })), []);
  const check = async () => {
    try {
      setResult(await api('mapping/check', { text }));
    } catch (err) {
      setResult({ message: err.message });
    }
  };
  const save = async () => {
    setAsking(false);
    try {
      const saved = await api('mapping', { text, base: data.revision });
      setResult(saved.ok ? { ok: true, message: `Saved as revision ${saved.revision}; the hub takes it into force once it has read it.` } : saved);
      if (saved.ok) setTimeout(() => load(), 500);
    } catch (err) {
      setResult({ message: err.message });
    }
  };
  const showDiff = async (event) => {
    event.preventDefault();
    const { from, to } = event.currentTarget.elements;
    try {
      setDiff(await api(`mapping/diff?from=${encodeURIComponent(from.value)}&to=${encodeURIComponent(to.value)}`));
    } catch (err) {
      setDiff({ error: err.message });
    }
  };
  if (!data) return html`<p class="loading">${result?.message ?? 'Loading…'}</p>`;
  return html`
    <h1>Mapping</h1>
    <p>In force: <code id="in-force">${data.inForce ?? 'none'}</code> · from ${data.source}</p>
    ${data.problem && html`<p class="notice error">${data.problem}</p>`}
    <div class="card scroll"><table id="mapping-table">
      <thead><tr><th>group</th><th>channel</th><th>targets</th></tr></thead>
      <tbody>${data.table.map((r) => html`<tr><td><code>${r.group}</code></td><td>${r.channel}</td><td>${r.targets.map((t) => html`<div><code>${t}</code></div>`)}${r.escalates && html`<div class="legend">escalates ${r.escalates}</div>`}</td></tr>`)}</tbody>
    </table></div>
    <h2>Edit</h2>
    <textarea id="mapping-text" spellcheck="false" value=${text} onInput=${(e) => { setText(e.currentTarget.value); setResult(undefined); }}></textarea>
    <div class="row" style="margin-top:.5rem">
      <button class="secondary" onClick=${check}>Check</button>
      <button onClick=${() => setAsking(true)}>Save</button>
    </div>
    ${result && html`<div id="mapping-result" role="status" class=${`notice${result.ok ? '' : ' error'}`}>
      ${result.ok ? (result.message ?? `Valid: ${plural(result.groups, 'group')}.`) : result.errors
        ? html`Not saved: ${plural(result.errors.length, 'error')}<ul class="errors">${result.errors.map((e) => html`<li><code class="path">${e.path}</code>: ${e.message}</li>`)}</ul>`
        : result.message}
    </div>`}
    <h2>What changed</h2>
    <form class="row" onSubmit=${showDiff}>
      <label>From<select name="from">${revisions.map((r, i) => html`<option value=${r.revision} selected=${i === 1}>${r.revision} (${time(r.at)})</option>`)}</select></label>
      <label>To<select name="to">${revisions.map((r, i) => html`<option value=${r.revision} selected=${i === 0}>${r.revision} (${time(r.at)})</option>`)}</select></label>
      <button class="secondary" type="submit" disabled=${revisions.length === 0}>Compare</button>
    </form>
    ${diff && (diff.error ? html`<p class="notice error">${diff.error}</p>` : html`<div class="card" id="diff">${diff.changes.length === 0 ? 'No change.' : html`<ul>${diff.changes.map((c) => html`<li><code>${c.path}</code>: ${'before' in c ? html`<span class="diff-del">${JSON.stringify(c.before)}</span>` : ''}${'before' in c && 'after' in c ? ' → ' : ''}${'after' in c ? html`<span class="diff-add">${JSON.stringify(c.after)}</span>` : ''}</li>`)}</ul>`}</div>`)}
    ${asking && html`<${Confirm} ask="Save this mapping as a new revision? The hub routes by it as soon as it reads it." onYes=${save} onNo=${() => setAsking(false)} />`}`;
}

const PAGES = { flow: ['Flow', Flow], trace: ['Trace', Trace], dead: ['Dead letters', DeadLetters], mapping: ['Mapping', Mapping] };

function App() {
  const [signedIn, setSignedIn] = useState(undefined);
  const { page, arg } = usePage();
  useEffect(() => {
    api('session').then(({ csrf: token }) => { csrf = token; setSignedIn(true); }, () => setSignedIn(false));
  }, []);
  if (signedIn === undefined) return html`<p class="loading">Loading…</p>`;
  if (!signedIn) return html`<${SignIn} onSignedIn=${() => setSignedIn(true)} />`;
  const [, Page] = PAGES[page] ?? PAGES.flow;
  const signOut = async () => {
    await api('signout', {}).catch(() => {});
    setSignedIn(false);
  };
  return html`
    <header><strong>notification-hub</strong>
      <nav>${Object.entries(PAGES).map(([key, [title]]) => html`<a href=${`#${key}`} class=${key === page ? 'current' : ''}>${title}</a>`)}
      <button onClick=${signOut}>Sign out</button></nav>
    </header>
    <main><${Page} key=${page} arg=${arg} /></main>`;
}

render(html`<${App} />`, document.getElementById('app'));
