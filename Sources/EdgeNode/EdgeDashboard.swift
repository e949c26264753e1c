import ServerSupport

/// The live dashboard at `/__edge/`: one self-contained page (the shared `DashboardAssets`
/// inlined, nothing fetched from elsewhere) that loads the last hour (or day) of
/// `/__edge/stats` history at once, then polls for each new second.
enum EdgeDashboard {
    static func html(statsPath: String) -> String {
        #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>durable-streams edge</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="icon" href="data:,">
        <style>\#(DashboardAssets.style)</style></head><body>
        <header><h1>durable-streams edge</h1><span class="muted" id="status">connecting…</span>
        <span style="flex:1"></span>
        <label class="muted">window <select id="window"><option value="900">15 min</option><option value="3600" selected>1 hour</option><option value="86400">24 hours</option></select></label></header>
        <main>
        <div class="empty" id="empty" hidden>No requests yet. The charts fill in as clients read through this edge; the last hour is kept, so this page shows it whenever it is opened.</div>
        <div class="tiles" id="tiles"></div>
        <div class="grid">
          <div class="card"><h2>Hit ratio</h2><div class="muted">requests served from the cache ÷ requests the cache could serve</div><div class="chart" id="c-hit"></div></div>
          <div class="card"><h2>Origin offload</h2><div class="muted">share of client requests and of response bytes the upstream did not have to answer</div><div class="chart" id="c-offload"></div></div>
          <div class="card"><h2>Requests by cache outcome</h2><div class="muted">client requests per second, stacked</div><div class="chart" id="c-outcome"></div></div>
          <div class="card"><h2>Requests by class</h2><div class="muted">client requests per second, stacked</div><div class="chart" id="c-class"></div></div>
          <div class="card"><h2>Bandwidth</h2><div class="muted">body bytes per second sent to clients, and received from the upstream</div><div class="chart" id="c-bytes"></div></div>
          <div class="card"><h2>Collapsing and fan-out</h2><div class="muted">long-polls per upstream long-poll; SSE readers per upstream subscription</div><div class="chart" id="c-collapse"></div></div>
          <div class="card"><h2>Upstream latency</h2><div class="muted">time to a complete upstream answer (bucket upper bounds)</div><div class="chart" id="c-latency"></div></div>
          <div class="card"><h2>Upstream requests and errors</h2><div class="muted">per second</div><div class="chart" id="c-upstream"></div></div>
          <div class="card"><h2>Cache</h2><div class="muted">bytes held (entries and evictions in the legend's latest values)</div><div class="chart" id="c-cache"></div></div>
          <div class="card"><h2>Connections</h2><div class="muted">open client connections by kind</div><div class="chart" id="c-conns"></div></div>
        </div>
        <div class="card" style="margin-top:14px"><h2>Top streams</h2><div class="muted" id="top-note"></div><div class="scroll"><table id="top"></table></div></div>
        <details open><summary>Definitions</summary><dl>
        <dt>Served from the cache</dt><dd>X-Cache HIT (fresh entry), STALE (entry past freshness, served while revalidating or while the upstream fails), REVALIDATED (entry confirmed by an upstream 304) and COLLAPSED (answered by another client's upstream request). MISS and PASS are answered by the upstream for this request.</dd>
        <dt>Hit ratio</dt><dd>served from the cache ÷ every stream request but PASS (PASS requests — writes, HEAD, offset=now, uncacheable answers — could never be cached). Route requests are left out.</dd>
        <dt>Request offload</dt><dd>1 − upstream requests ÷ client requests, for streams.</dd>
        <dt>Byte offload</dt><dd>1 − body bytes received from the upstream ÷ body bytes sent to clients; bandwidth saved is the difference.</dd>
        <dt>Collapse ratio</dt><dd>client long-polls ÷ upstream long-polls; SSE fan-out is open SSE responses ÷ upstream SSE subscriptions.</dd>
        <dt>Top streams</dt><dd>the busiest streams since the edge started, from a bounded sketch: counts are exact for streams tracked throughout and at most the error shown above the truth otherwise.</dd>
        </dl></details>
        </main>
        <script>\#(DashboardAssets.chartScript)</script>
        <script>
        const STATS = '\#(statsPath)';
        const OUTCOMES = [['HIT', '#4caf50'], ['STALE', '#9ccc65'], ['REVALIDATED', '#d4e157'], ['COLLAPSED', '#26c6da'], ['MISS', '#ffa726'], ['PASS', '#8d96a3']];
        const CLASSES = [['catch_up', '#42a5f5'], ['long_poll', '#ab47bc'], ['sse', '#26a69a'], ['write', '#ef5350'], ['head', '#ffca28'], ['other', '#78909c'], ['route', '#a1887f']];
        const F = DS.fmt;
        let windowSeconds = 3600, stats = null, history = { columns: [], rows: [], step: 1 }, index = {};
        const $ = id => document.getElementById(id);
        function take(h, append) {
          if (!append) { history = { columns: h.columns, rows: h.rows.slice(), step: h.step }; index = {}; h.columns.forEach((c, i) => index[c] = i) }
          else { const newest = history.rows.length ? history.rows[history.rows.length - 1][0] : -1; for (const r of h.rows) if (r[0] > newest) history.rows.push(r) }
          const newest = history.rows.length ? history.rows[history.rows.length - 1][0] : 0;
          history.rows = history.rows.filter(r => r[0] > newest - windowSeconds);
        }
        const val = (r, c) => r[index[c]];
        const rate = c => history.rows.map(r => val(r, c) / val(r, 'span'));
        const ratio = (a, b) => history.rows.map(r => { const d = typeof b == 'function' ? b(r) : val(r, b); return d > 0 ? (typeof a == 'function' ? a(r) : val(r, a)) / d : null });
        function tiles() {
          const s = stats, cache = s.cache;
          const items = [
            ['hitRate', 'Hit ratio', F.pct(s.hitRate)], ['requestOffload', 'Request offload', F.pct(s.requestOffload)],
            ['byteOffload', 'Byte offload', F.pct(s.byteOffload)], ['bytesSaved', 'Bandwidth saved', F.bytes(s.bytesSaved)],
            ['clientRequestsTotal', 'Client requests', F.int(s.clientRequestsTotal)], ['upstreamRequestsTotal', 'Upstream requests', F.int(s.upstreamRequestsTotal)],
            ['upstreamErrors', 'Upstream errors', F.int(s.upstreamErrors)], ['upstreamLatencyP99', 'Upstream p99', F.ms(s.upstreamLatencyP99)],
            ['openConnections', 'Connections', F.int(s.openConnections)], ['liveReaders', 'Live readers (SSE + long-poll)', F.int(s.openSSE + s.openLongPolls)],
            ['cacheBytes', 'Cache', F.bytes(cache.bytes) + (cache.budget ? ' of ' + F.bytes(cache.budget) : '')], ['cacheEntries', 'Cache entries', F.int(cache.entries)]];
          $('tiles').innerHTML = items.map(([key, label, value]) => `<div class="tile"><div class="muted">${label}</div><div class="value" data-stat="${key}">${value}</div></div>`).join('')
            + `<div class="tile"><div class="muted">Since</div><div class="value" style="font-size:15px">${s.startedAt ? new Date(s.startedAt * 1000).toLocaleString() : '–'}</div></div>`;
        }
        function charts() {
          const rows = history.rows, times = rows.map(r => r[0]);
          // The axis starts when the window does, or when the edge started if that is later: a new
          // edge's first minutes fill the chart rather than a sliver at its right edge.
          const to = times.length ? times[times.length - 1] : stats.now, from = Math.max(to - windowSeconds, Math.min(stats.startedAt || 0, to - 60));
          const base = { times, from, to };
          const chart = (id, o) => DS.chart($(id), Object.assign({}, base, o));
          chart('c-hit', { title: 'hit ratio', format: F.pct, max: 1, series: [{ name: 'hit ratio', color: '#4caf50', values: ratio('served_from_cache', 'cache_candidates') }] });
          chart('c-offload', { title: 'origin offload', format: F.pct, max: 1, series: [
            { name: 'requests', color: '#42a5f5', values: ratio(r => val(r, 'stream_requests') - val(r, 'upstream_requests'), 'stream_requests') },
            { name: 'bytes', color: '#ffa726', values: ratio(r => val(r, 'bytes_from_cache') + val(r, 'bytes_from_upstream') - val(r, 'bytes_received'), r => val(r, 'bytes_from_cache') + val(r, 'bytes_from_upstream')) }] });
          chart('c-outcome', { title: 'requests by outcome', format: F.rate, stacked: true, series: OUTCOMES.map(([n, c]) => ({ name: n, color: c, values: rate(n) })) });
          chart('c-class', { title: 'requests by class', format: F.rate, stacked: true, series: CLASSES.map(([n, c]) => ({ name: n, color: c, values: rate(n) })) });
          chart('c-bytes', { title: 'bandwidth', format: F.bytesRate, series: [
            { name: 'from cache', color: '#4caf50', values: rate('bytes_from_cache') }, { name: 'from upstream answers', color: '#ffa726', values: rate('bytes_from_upstream') },
            { name: 'received from upstream', color: '#ef5350', values: rate('bytes_received') }] });
          chart('c-collapse', { title: 'collapse ratio', format: F.ratio, series: [
            { name: 'long-polls per upstream long-poll', color: '#ab47bc', values: ratio('long_poll', 'long_poll_upstream_requests') },
            { name: 'SSE readers per subscription', color: '#26a69a', values: ratio('open_sse', 'sse_subscriptions') }] });
          chart('c-latency', { title: 'upstream latency', format: F.ms, series: [
            { name: 'p50', color: '#42a5f5', values: rows.map(r => { const v = val(r, 'latency_p50'); return v == null ? null : v < 0 ? 60 : v }) },
            { name: 'p99', color: '#ef5350', values: rows.map(r => { const v = val(r, 'latency_p99'); return v == null ? null : v < 0 ? 60 : v }) }] });
          chart('c-upstream', { title: 'upstream requests', format: F.rate, series: [
            { name: 'upstream requests', color: '#42a5f5', values: rate('upstream_requests') }, { name: 'errors', color: '#ef5350', values: rate('upstream_errors') }] });
          const lastRow = rows[rows.length - 1];
          chart('c-cache', { title: 'cache', format: F.bytes, series: [{ name: 'bytes' + (lastRow ? ` · ${F.int(val(lastRow, 'cache_entries'))} entries · ${F.rate(val(lastRow, 'evictions') / val(lastRow, 'span'))} evictions` : ''), color: '#26c6da', values: rows.map(r => val(r, 'cache_bytes')) }] });
          chart('c-conns', { title: 'connections', format: F.num, series: [
            { name: 'all', color: '#90a4ae', values: rows.map(r => val(r, 'open_connections')) }, { name: 'SSE', color: '#26a69a', values: rows.map(r => val(r, 'open_sse')) },
            { name: 'long-polls', color: '#ab47bc', values: rows.map(r => val(r, 'open_long_polls')) }] });
        }
        function streamsTable() {
          const list = stats.topStreams || [];
          $('top-note').textContent = `the ${list.length} busiest of ${F.int(stats.topStreamsRequests)} stream requests counted since the edge started (up to ${stats.topStreamsTracked} streams tracked)`;
          $('top').innerHTML = '<tr><th>stream</th><th>requests</th><th>hit ratio</th><th>bytes</th><th>live readers</th></tr>' + (list.length ? list.map(e => {
            const counted = e.requests - e.error;
            return `<tr data-stream="${DS.esc(e.stream)}"><td>${DS.esc(e.stream)}</td><td>${F.int(e.requests)}${e.error ? ` <span class="muted">±${F.int(e.error)}</span>` : ''}</td><td>${counted > 0 ? F.pct(e.servedFromCache / counted) : '–'}</td><td>${F.bytes(e.bytes)}</td><td>${F.int(e.liveReaders)}</td></tr>`;
          }).join('') : '<tr><td colspan="5" class="muted">no stream requests yet</td></tr>');
        }
        function render() {
          $('empty').hidden = stats.clientRequestsTotal > 0;
          tiles(); charts(); streamsTable();
          $('status').textContent = 'live · ' + new Date(stats.now * 1000).toLocaleTimeString();
          document.body.dataset.loaded = 'true';
        }
        async function fetchStats(query) {
          const response = await fetch(STATS + query, { cache: 'no-store' });
          if (!response.ok) throw new Error(response.status);
          return response.json();
        }
        let busy = false, minuteReload = 0;
        async function refresh(full) {
          if (busy) return; busy = true;
          try {
            const day = windowSeconds > 3600;
            const newest = history.rows.length ? history.rows[history.rows.length - 1][0] : null;
            if (full || newest == null || (day && Date.now() > minuteReload)) {
              stats = await fetchStats(day ? '?history=day' : '?history=hour'); take(stats.history, false); minuteReload = Date.now() + 30000;
            } else if (!day) {
              stats = await fetchStats('?since=' + newest); take(stats.history, true);
            } else {
              stats = await fetchStats('');
            }
            render();
          } catch (e) { $('status').textContent = 'stats unavailable (' + e.message + '), retrying'; }
          finally { busy = false }
        }
        $('window').addEventListener('change', e => { windowSeconds = Number(e.target.value); refresh(true) });
        refresh(true); setInterval(() => refresh(false), 1000);
        </script></body></html>
        """#
    }
}
