import ServerSupport

/// The live page at `/__origin/`: one self-contained document (the shared `DashboardAssets`
/// inlined, nothing fetched from anywhere else) that loads the last hour (or day) of
/// `/__origin/stats` at once, then polls for each new second.
enum OriginDashboard {
    /// The page as sent: the same bytes for every request, made once.
    static let page: [UInt8] = Array(html(statsPath: StreamService.statsPath).utf8)

    static func html(statsPath: String) -> String {
        #"""
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>durable-streams origin</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="icon" href="data:,">
        <style>\#(DashboardAssets.style)</style></head><body>
        <header><h1>durable-streams origin</h1><span class="muted" id="status">connecting…</span>
        <span style="flex:1"></span>
        <label class="muted">window <select id="window"><option value="900">15 min</option><option value="3600" selected>1 hour</option><option value="86400">24 hours</option></select></label></header>
        <main>
        <div class="empty" id="empty" hidden>No stream requests yet. The charts fill in as clients and edges create, append to and read streams here; the last hour is kept, so this page shows it whenever it is opened.</div>
        <div class="tiles" id="tiles"></div>
        <div class="grid">
          <div class="card"><h2>Requests by operation</h2><div class="muted">requests answered per second, stacked</div><div class="chart" id="c-ops"></div></div>
          <div class="card"><h2>Appends</h2><div class="muted">appends that added data, per second</div><div class="chart" id="c-appends"></div></div>
          <div class="card"><h2>Appended bytes</h2><div class="muted">bytes added to streams per second (initial PUT bodies included)</div><div class="chart" id="c-appended"></div></div>
          <div class="card"><h2>Bandwidth</h2><div class="muted">body bytes per second sent in responses (SSE events included) and received in requests</div><div class="chart" id="c-bytes"></div></div>
          <div class="card"><h2>Live readers and connections</h2><div class="muted">at the end of each interval</div><div class="chart" id="c-readers"></div></div>
          <div class="card"><h2>Errors</h2><div class="muted">error answers per second</div><div class="chart" id="c-errors"></div></div>
          <div class="card"><h2>Streams</h2><div class="muted">streams in the store</div><div class="chart" id="c-streams"></div></div>
        </div>
        <div class="card" style="margin-top:14px"><h2>Streams</h2><div class="muted" id="top-note"></div><div class="scroll"><table id="top"></table></div></div>
        <details open><summary>Definitions</summary><dl>
        <dt>Requests</dt><dd>every request the origin answered, by operation: create (PUT), append and close (POST), read (catch-up GET), long_poll, sse, head, delete, options (CORS preflight), invalid (a stream path or query it refused with 400), metrics (this page, its stats and /metrics) and other (/healthz, unknown paths). Requests refused by authentication are not among them (see ds_origin_auth_refusals_total).</dd>
        <dt>Stream requests</dt><dd>requests on stream paths: every operation but metrics and other.</dd>
        <dt>Appends</dt><dd>appends that added data (a retried producer append or a bare close adds none); appended bytes also count the body of a PUT that created a stream.</dd>
        <dt>Live readers</dt><dd>long-polls waiting for data and SSE responses open, over all streams or on one.</dd>
        <dt>Size</dt><dd>the bytes a stream holds now (its tail offset), read from the store's memory.</dd>
        <dt>Appends/s</dt><dd>in the streams table, from the stream's append count over the last ten seconds of polls.</dd>
        <dt>Busiest streams</dt><dd>by requests since the origin started, from a bounded sketch: counts are exact for streams tracked throughout and at most the error shown above the truth otherwise.</dd>
        </dl></details>
        </main>
        <script>\#(DashboardAssets.chartScript)</script>
        <script>
        // Top-level names must not be the window's own unforgeable ones (top, window, document,
        // location): declaring one is a SyntaxError that stops the whole script.
        const STATS = '\#(statsPath)';
        const OPS = [['read', '#42a5f5'], ['long_poll', '#ab47bc'], ['sse', '#26a69a'], ['append', '#ef5350'], ['create', '#ffa726'], ['close', '#ff7043'],
          ['head', '#ffca28'], ['delete', '#8d6e63'], ['options', '#9ccc65'], ['invalid', '#e57373'], ['metrics', '#78909c'], ['other', '#b0bec5']];
        const F = DS.fmt;
        let windowSeconds = 3600, stats = null, history = { columns: [], rows: [], step: 1 }, index = {};
        // Each poll's append count per stream, for the table's appends per second.
        let marks = [];
        const $ = id => document.getElementById(id);
        function take(h, append) {
          if (!append) { history = { columns: h.columns, rows: h.rows.slice(), step: h.step }; index = {}; h.columns.forEach((c, i) => index[c] = i) }
          else { const newest = history.rows.length ? history.rows[history.rows.length - 1][0] : -1; for (const r of h.rows) if (r[0] > newest) history.rows.push(r) }
          const newest = history.rows.length ? history.rows[history.rows.length - 1][0] : 0;
          history.rows = history.rows.filter(r => r[0] > newest - windowSeconds);
        }
        const val = (r, c) => r[index[c]];
        const rate = c => history.rows.map(r => val(r, c) / val(r, 'span'));
        const gauge = c => history.rows.map(r => val(r, c));
        function tiles() {
          const s = stats;
          const items = [
            ['requestsTotal', 'Requests', F.int(s.requestsTotal)], ['streamRequestsTotal', 'Stream requests', F.int(s.streamRequestsTotal)],
            ['appends', 'Appends', F.int(s.appends)], ['appendedBytes', 'Appended', F.bytes(s.appendedBytes)],
            ['requestBytes', 'Bytes in', F.bytes(s.requestBytes)], ['responseBytes', 'Bytes out', F.bytes(s.responseBytes)],
            ['streams', 'Streams', F.int(s.streams)], ['openConnections', 'Connections', F.int(s.openConnections)],
            ['liveReaders', 'Live readers (SSE + long-poll)', F.int(s.liveReaders)],
            ['clientErrors', 'Client errors (4xx)', F.int(s.clientErrors)], ['serverErrors', 'Server errors (5xx)', F.int(s.serverErrors)]];
          $('tiles').innerHTML = items.map(([key, label, value]) => `<div class="tile"><div class="muted">${label}</div><div class="value" data-stat="${key}">${value}</div></div>`).join('')
            + `<div class="tile"><div class="muted">Since</div><div class="value" style="font-size:15px">${s.startedAt ? new Date(s.startedAt * 1000).toLocaleString() : '–'}</div></div>`;
        }
        function charts() {
          const rows = history.rows, times = rows.map(r => r[0]);
          const to = times.length ? times[times.length - 1] : stats.now, from = to - windowSeconds;
          const chart = (id, o) => DS.chart($(id), Object.assign({ times, from, to }, o));
          chart('c-ops', { title: 'requests by operation', format: F.rate, stacked: true, series: OPS.map(([n, c]) => ({ name: n, color: c, values: rate(n) })) });
          chart('c-appends', { title: 'appends', format: F.rate, series: [{ name: 'appends', color: '#ef5350', values: rate('appends') }] });
          chart('c-appended', { title: 'appended bytes', format: F.bytesRate, series: [{ name: 'appended', color: '#ffa726', values: rate('appended_bytes') }] });
          chart('c-bytes', { title: 'bandwidth', format: F.bytesRate, series: [
            { name: 'response bytes', color: '#42a5f5', values: rate('response_bytes') }, { name: 'request bytes', color: '#ef5350', values: rate('request_bytes') }] });
          chart('c-readers', { title: 'live readers and connections', format: F.num, series: [
            { name: 'connections', color: '#90a4ae', values: gauge('open_connections') },
            { name: 'live readers', color: '#4caf50', values: rows.map(r => val(r, 'open_long_polls') + val(r, 'open_sse')) },
            { name: 'long-polls', color: '#ab47bc', values: gauge('open_long_polls') }, { name: 'SSE', color: '#26a69a', values: gauge('open_sse') }] });
          chart('c-errors', { title: 'errors', format: F.rate, series: [
            { name: '4xx', color: '#ffca28', values: rate('client_errors') }, { name: '5xx', color: '#ef5350', values: rate('server_errors') }] });
          chart('c-streams', { title: 'streams', format: F.num, series: [{ name: 'streams', color: '#26c6da', values: gauge('streams') }] });
        }
        function appendRate(stream, appends) {
          const t = Date.now() / 1000;
          const first = marks.find(m => m.appends.has(stream));
          if (!first || t - first.t < 0.5) return null;
          return Math.max(0, appends - first.appends.get(stream)) / (t - first.t);
        }
        function streamTable() {
          const list = stats.topStreams || [];
          const t = Date.now() / 1000;
          marks.push({ t, appends: new Map(list.map(e => [e.stream, e.appends])) });
          marks = marks.filter(m => m.t > t - 10.5);
          $('top-note').textContent = `the ${list.length} busiest of ${F.int(stats.topStreamsRequests)} stream requests counted since the origin started (up to ${stats.topStreamsTracked} streams tracked)`;
          $('top').innerHTML = '<tr><th>stream</th><th>size</th><th>appends/s</th><th>appends</th><th>appended</th><th>reads</th><th>live readers</th><th>requests</th></tr>' + (list.length ? list.map(e => {
            return `<tr data-stream="${DS.esc(e.stream)}"><td>${DS.esc(e.stream)}</td><td data-size="${e.sizeBytes == null ? '' : e.sizeBytes}">${e.sizeBytes == null ? '<span class="muted">gone</span>' : F.bytes(e.sizeBytes)}</td>`
              + `<td>${F.rate(appendRate(e.stream, e.appends))}</td><td>${F.int(e.appends)}</td><td>${F.bytes(e.appendedBytes)}</td><td>${F.int(e.reads)}</td>`
              + `<td>${F.int(e.liveReaders)}</td><td>${F.int(e.requests)}${e.error ? ` <span class="muted">±${F.int(e.error)}</span>` : ''}</td></tr>`;
          }).join('') : '<tr><td colspan="8" class="muted">no stream requests yet</td></tr>');
        }
        function render() {
          $('empty').hidden = stats.streamRequestsTotal > 0;
          tiles(); charts(); streamTable();
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
