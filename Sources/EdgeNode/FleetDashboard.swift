import ServerSupport

/// The fleet page: every member's stats fetched through `FleetResponder` each second and
/// summed here (ratios from summed parts, never averages of ratios), with a row per edge and
/// the origin's own request rate beside the readers the edges served.
enum FleetDashboard {
    static let html = #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>durable-streams fleet</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="icon" href="data:,">
        <style>\#(DashboardAssets.style)</style></head><body>
        <header><h1>durable-streams fleet</h1><span class="muted" id="status">connecting…</span>
        <span style="flex:1"></span>
        <label class="muted">window <select id="window"><option value="900">15 min</option><option value="3600" selected>1 hour</option></select></label></header>
        <main>
        <div class="empty" id="empty" hidden>No requests through these edges yet. The charts fill in as clients read through them.</div>
        <div class="tiles" id="tiles"></div>
        <div class="card"><h2>Edges</h2><div class="scroll"><table id="edges"></table></div></div>
        <div class="grid" style="margin-top:14px">
          <div class="card"><h2>Hit ratio</h2><div class="muted">the fleet (summed parts) and each edge</div><div class="chart" id="c-hit"></div></div>
          <div class="card"><h2>Readers served and origin load</h2><div class="muted">requests per second: clients of all edges, what the edges asked upstream, and the stream requests the origin answered in all</div><div class="chart" id="c-origin"></div></div>
          <div class="card"><h2>Requests by cache outcome</h2><div class="muted">all edges, per second, stacked</div><div class="chart" id="c-outcome"></div></div>
          <div class="card"><h2>Bandwidth</h2><div class="muted">all edges, body bytes per second</div><div class="chart" id="c-bytes"></div></div>
          <div class="card"><h2>Connections</h2><div class="muted">open client connections, stacked by edge</div><div class="chart" id="c-conns"></div></div>
        </div>
        <details><summary>Definitions</summary><dl>
        <dt>Hit ratio</dt><dd>requests served from the cache (HIT, STALE, REVALIDATED, COLLAPSED) ÷ every stream request but PASS, summed over the edges before dividing.</dd>
        <dt>Request offload</dt><dd>1 − upstream requests ÷ client requests, for streams, over all edges. With tiers, an edge's upstream may be another edge; the origin's own rate is charted beside.</dd>
        <dt>Byte offload</dt><dd>1 − body bytes the edges received from their upstreams ÷ body bytes they sent to clients.</dd>
        </dl></details>
        </main>
        <script>\#(DashboardAssets.chartScript)</script>
        <script>
        const F = DS.fmt, $ = id => document.getElementById(id);
        const OUTCOMES = [['HIT', '#4caf50'], ['STALE', '#9ccc65'], ['REVALIDATED', '#d4e157'], ['COLLAPSED', '#26c6da'], ['MISS', '#ffa726'], ['PASS', '#8d96a3']];
        const SERVED = ['HIT', 'STALE', 'REVALIDATED', 'COLLAPSED'];
        const PALETTE = ['#42a5f5', '#ab47bc', '#26a69a', '#ffca28', '#ef5350', '#8d6e63', '#78909c', '#d4e157'];
        let members = [], windowSeconds = 3600;
        function take(m, h) {
          if (!h) return;
          if (!m.columns) { m.columns = h.columns; m.index = {}; h.columns.forEach((c, i) => m.index[c] = i); m.rows = [] }
          const newest = m.rows.length ? m.rows[m.rows.length - 1][0] : -1;
          for (const r of h.rows) if (r[0] > newest) m.rows.push(r);
          const last = m.rows.length ? m.rows[m.rows.length - 1][0] : 0;
          m.rows = m.rows.filter(r => r[0] > last - windowSeconds);
        }
        const col = (m, r, c) => m.index && m.index[c] != null ? r[m.index[c]] : 0;
        function parts(s) {
          let served = 0, candidates = 0, stream = 0, upstream = 0;
          for (const [kind, outcomes] of Object.entries(s.requests || {})) {
            if (kind == 'route') continue;
            for (const [o, n] of Object.entries(outcomes)) { stream += n; if (o != 'PASS') candidates += n; if (SERVED.includes(o)) served += n }
          }
          for (const [kind, n] of Object.entries(s.upstreamRequests || {})) if (kind != 'route') upstream += n;
          return { served, candidates, stream, upstream };
        }
        const div = (a, b) => b > 0 ? a / b : null;
        function recentRate(m, c, seconds) {
          if (!m.rows || !m.rows.length) return null;
          const newest = m.rows[m.rows.length - 1][0]; let n = 0, span = 0;
          for (const r of m.rows) if (r[0] > newest - seconds) { n += col(m, r, c); span += col(m, r, 'span') }
          return span ? n / span : null;
        }
        // Sums a column over edges, per second: times every edge reported, summed where present.
        function fleetSeries(edges, times, f) {
          const maps = edges.map(m => new Map((m.rows || []).map(r => [r[0], r])));
          return times.map(t => { let sum = 0, seen = false; edges.forEach((m, i) => { const r = maps[i].get(t); if (r) { seen = true; sum += f(m, r) } }); return seen ? sum : null });
        }
        function render() {
          const edges = members.filter(m => m.kind == 'edge'), origin = members.find(m => m.kind == 'origin');
          const up = edges.filter(m => m.ok);
          const totals = { served: 0, candidates: 0, stream: 0, upstream: 0, clients: 0, upstreamAll: 0, sent: 0, received: 0, conns: 0, live: 0, errors: 0 };
          for (const m of up) {
            const s = m.stats, p = parts(s);
            totals.served += p.served; totals.candidates += p.candidates; totals.stream += p.stream; totals.upstream += p.upstream;
            totals.clients += s.clientRequestsTotal; totals.upstreamAll += s.upstreamRequestsTotal;
            totals.sent += s.bytesFromCache + s.bytesFromUpstream; totals.received += s.bytesReceived;
            totals.conns += s.openConnections; totals.live += s.openSSE + s.openLongPolls; totals.errors += s.upstreamErrors;
          }
          $('empty').hidden = totals.clients > 0;
          const clientRate = up.reduce((a, m) => a + (recentRate(m, 'stream_requests', 10) || 0), 0);
          const originRate = origin && origin.ok ? recentRate(origin, 'stream_requests', 10) : null;
          const tiles = [['edgesUp', 'Edges up', `${up.length} of ${edges.length}`], ['hitRate', 'Fleet hit ratio', F.pct(div(totals.served, totals.candidates))],
            ['requestOffload', 'Request offload', F.pct(div(totals.stream - totals.upstream, totals.stream))], ['byteOffload', 'Byte offload', F.pct(div(totals.sent - totals.received, totals.sent))],
            ['clientRequestsTotal', 'Client requests', F.int(totals.clients)], ['upstreamRequestsTotal', 'Upstream requests', F.int(totals.upstreamAll)],
            ['bytesSaved', 'Bandwidth saved', F.bytes(Math.max(0, totals.sent - totals.received))], ['openConnections', 'Connections', F.int(totals.conns)],
            ['liveReaders', 'Live readers', F.int(totals.live)], ['upstreamErrors', 'Upstream errors', F.int(totals.errors)],
            ['readerRate', 'Readers served (last 10 s)', F.rate(clientRate)], ['originRate', origin ? 'Origin requests (last 10 s)' : 'Origin', origin ? (origin.ok ? F.rate(originRate) : 'unreachable') : 'not configured']];
          $('tiles').innerHTML = tiles.map(([k, l, v]) => `<div class="tile"><div class="muted">${l}</div><div class="value" data-stat="${k}">${v}</div></div>`).join('');
          $('edges').innerHTML = '<tr><th>edge</th><th>status</th><th>hit ratio</th><th>client requests</th><th>upstream requests</th><th>requests/s</th><th>connections</th><th>live readers</th><th>upstream errors</th></tr>' + edges.map(m => {
            if (!m.ok) return `<tr data-edge="${DS.esc(m.url)}"><td>${DS.esc(m.url)}</td><td data-field="status">down</td><td colspan="7" class="muted">${DS.esc(m.error || '')}</td></tr>`;
            const s = m.stats, p = parts(s);
            return `<tr data-edge="${DS.esc(m.url)}"><td>${DS.esc(m.url)}</td><td data-field="status">up</td><td data-field="hitRate">${F.pct(div(p.served, p.candidates))}</td><td data-field="clientRequestsTotal">${F.int(s.clientRequestsTotal)}</td><td data-field="upstreamRequestsTotal">${F.int(s.upstreamRequestsTotal)}</td><td>${F.rate(recentRate(m, 'stream_requests', 10))}</td><td>${F.int(s.openConnections)}</td><td>${F.int(s.openSSE + s.openLongPolls)}</td><td>${F.int(s.upstreamErrors)}</td></tr>`;
          }).join('');
          const times = [...new Set(up.flatMap(m => (m.rows || []).map(r => r[0])))].sort((a, b) => a - b);
          const now = times.length ? times[times.length - 1] : Math.floor(Date.now() / 1000);
          const started = Math.min(...up.map(m => m.stats.startedAt || now));
          const base = { times, from: Math.max(now - windowSeconds, Math.min(started, now - 60)), to: now };
          const chart = (id, o) => DS.chart($(id), Object.assign({}, base, o));
          const sum = f => fleetSeries(up, times, f);
          const served = sum((m, r) => col(m, r, 'served_from_cache')), candidates = sum((m, r) => col(m, r, 'cache_candidates'));
          chart('c-hit', { title: 'hit ratio', format: F.pct, max: 1, series: [{ name: 'fleet', color: '#4caf50', values: served.map((v, i) => v == null ? null : div(v, candidates[i])) }]
            .concat(up.map((m, k) => ({ name: m.url, color: PALETTE[k % PALETTE.length], values: fleetSeries([m], times, (m, r) => col(m, r, 'served_from_cache')).map((v, i) => { const c = fleetSeries([m], [times[i]], (m, r) => col(m, r, 'cache_candidates'))[0]; return v == null ? null : div(v, c) }) }))) });
          const perSecond = f => sum((m, r) => f(m, r) / col(m, r, 'span'));
          const originMap = origin && origin.rows ? new Map(origin.rows.map(r => [r[0], r])) : null;
          const originSeries = [{ name: 'clients of the edges', color: '#42a5f5', values: perSecond((m, r) => col(m, r, 'stream_requests')) },
            { name: 'edges to their upstream', color: '#ffa726', values: perSecond((m, r) => col(m, r, 'upstream_requests')) }];
          if (originMap) originSeries.push({ name: 'origin, stream requests', color: '#ef5350', values: times.map(t => { const r = originMap.get(t); return r ? col(origin, r, 'stream_requests') / col(origin, r, 'span') : null }) });
          chart('c-origin', { title: 'origin load', format: F.rate, series: originSeries });
          chart('c-outcome', { title: 'requests by outcome', format: F.rate, stacked: true, series: OUTCOMES.map(([n, c]) => ({ name: n, color: c, values: perSecond((m, r) => col(m, r, n)) })) });
          chart('c-bytes', { title: 'bandwidth', format: F.bytesRate, series: [
            { name: 'sent to clients', color: '#4caf50', values: perSecond((m, r) => col(m, r, 'bytes_from_cache') + col(m, r, 'bytes_from_upstream')) },
            { name: 'received from upstreams', color: '#ef5350', values: perSecond((m, r) => col(m, r, 'bytes_received')) }] });
          chart('c-conns', { title: 'connections', format: F.num, stacked: true, series: up.map((m, k) => ({ name: m.url, color: PALETTE[k % PALETTE.length], values: fleetSeries([m], times, (m, r) => col(m, r, 'open_connections')) })) });
          $('status').textContent = 'live · ' + new Date().toLocaleTimeString();
          document.body.dataset.loaded = 'true';
        }
        async function poll(m, full) {
          try {
            const newest = !full && m.rows && m.rows.length ? m.rows[m.rows.length - 1][0] : null;
            const response = await fetch(m.path + (newest == null ? '?history=hour' : '?since=' + newest), { cache: 'no-store' });
            const s = await response.json();
            if (!response.ok) throw new Error(s.error || response.status);
            if (newest == null) m.columns = null;
            m.stats = s; m.ok = true; m.error = null; take(m, s.history);
          } catch (e) { m.ok = false; m.error = String(e.message || e) }
        }
        let busy = false;
        async function refresh(full) {
          if (busy) return; busy = true;
          try {
            if (!members.length) members = (await (await fetch('members', { cache: 'no-store' })).json()).members.map(m => ({ kind: m.kind, url: m.url, path: m.stats }));
            await Promise.all(members.map(m => poll(m, full)));
            render();
          } catch (e) { $('status').textContent = 'unavailable (' + e.message + '), retrying' }
          finally { busy = false }
        }
        $('window').addEventListener('change', e => { windowSeconds = Number(e.target.value); refresh(true) });
        refresh(true); setInterval(() => refresh(false), 1000);
        </script></body></html>
        """#
}
