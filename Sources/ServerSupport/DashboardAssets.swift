/// What the dashboards (`/__edge/`, `/__origin/`, the fleet page) share: one stylesheet and a
/// small SVG chart library, inlined into each page so a page needs nothing from anywhere else
/// (no scripts, fonts or styles from a CDN; it works on a network without internet).
public enum DashboardAssets {
    /// Styles for a dark page of cards that reflows from a phone to a wide screen.
    public static let style = #"""
        :root{color-scheme:dark}
        body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#0f1115;color:#e6e6e6}
        header{display:flex;flex-wrap:wrap;align-items:baseline;gap:12px;padding:16px 20px 8px}
        h1{font-size:18px;margin:0}h2{font-size:14px;margin:0 0 6px;font-weight:600}
        main{padding:0 20px 24px}
        .muted{color:#9aa4b2;font-size:12px}
        .tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin:8px 0 16px}
        .tile{background:#181b22;border-radius:8px;padding:10px 12px}
        .tile .value{font-size:22px;font-variant-numeric:tabular-nums}
        .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:14px}
        .card{background:#181b22;border-radius:8px;padding:12px;min-width:0}
        .chart svg{width:100%;height:auto;display:block}
        .legend{display:flex;flex-wrap:wrap;gap:4px 12px;font-size:12px;color:#c3cad4;margin-top:4px}
        .legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
        .empty{padding:28px 12px;text-align:center;color:#9aa4b2;border:1px dashed #2b303b;border-radius:8px;margin:8px 0 16px}
        table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
        th,td{text-align:right;padding:5px 8px;border-bottom:1px solid #242833;white-space:nowrap}
        th:first-child,td:first-child{text-align:left;white-space:normal;word-break:break-all}
        th{color:#9aa4b2;font-weight:500;font-size:12px}
        .scroll{overflow-x:auto}
        select,button{background:#242833;color:#e6e6e6;border:1px solid #343a46;border-radius:6px;padding:3px 8px;font:inherit}
        details{margin-top:16px}summary{cursor:pointer;color:#9aa4b2}
        dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;font-size:13px}dt{color:#9aa4b2}
        @media (max-width:480px){.grid{grid-template-columns:1fr}header,main{padding-left:10px;padding-right:10px}}
        """#

    /// `DS.chart(element, {times, series:[{name, color, values}], stacked, format, max})` draws
    /// a time-series chart with labelled axes into `element` (SVG), and records how many points
    /// it drew in `data-points` (what the browser tests read). `DS.fmt` formats numbers with
    /// their units. Times are Unix seconds; a `null` value is a gap.
    public static let chartScript = #"""
        const DS = (() => {
          const units = (v, steps, names) => { let i = 0; while (Math.abs(v) >= steps && i < names.length - 1) { v /= steps; i++ } return (i ? v.toFixed(v < 10 ? 1 : 0) : Math.round(v)) + ' ' + names[i] };
          const fmt = {
            pct: v => v == null ? '–' : (v * 100).toFixed(1) + ' %',
            num: v => v == null ? '–' : Math.abs(v) >= 1000 ? units(v, 1000, ['', 'k', 'M', 'G']).trim() : String(Math.round(v * 10) / 10),
            int: v => v == null ? '–' : Math.round(v).toLocaleString('en-US'),
            bytes: v => v == null ? '–' : units(v, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB']),
            rate: v => v == null ? '–' : fmt.num(v) + '/s',
            bytesRate: v => v == null ? '–' : fmt.bytes(v) + '/s',
            ms: v => v == null ? '–' : v < 0 ? '> 60 s' : v < 0.01 ? (v * 1000).toFixed(1) + ' ms' : v < 1 ? Math.round(v * 1000) + ' ms' : v.toFixed(1) + ' s',
            ratio: v => v == null ? '–' : v.toFixed(1) + '×',
          };
          const clock = t => { const d = new Date(t * 1000); return String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0') };
          function niceMax(v) {
            if (!(v > 0)) return 1;
            const p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
            return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
          }
          function chart(el, o) {
            const W = 600, H = 210, L = 62, R = 10, T = 10, B = 24, w = W - L - R, h = H - T - B;
            const times = o.times, n = times.length, format = o.format || fmt.num;
            const t0 = o.from != null ? o.from : (n ? times[0] : 0), t1 = o.to != null ? o.to : (n ? times[n - 1] : 1);
            const x = t => L + (t1 > t0 ? (t - t0) / (t1 - t0) : 1) * w;
            const stacked = o.stacked ? o.series.map((s, k) => s.values.map((v, i) => o.series.slice(0, k + 1).reduce((a, z) => a + (z.values[i] || 0), 0))) : null;
            let top = o.max;
            if (top == null) { let m = 0; (stacked || o.series.map(s => s.values)).forEach(vs => vs.forEach(v => { if (v != null && v > m) m = v })); top = niceMax(m) }
            const y = v => T + h - Math.min(1, Math.max(0, v / top)) * h;
            let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${o.title || ''}">`;
            for (let k = 0; k <= 4; k++) {
              const v = top * k / 4, yy = y(v);
              svg += `<line x1="${L}" x2="${W - R}" y1="${yy}" y2="${yy}" stroke="#2b303b"/><text x="${L - 6}" y="${yy + 4}" fill="#9aa4b2" font-size="11" text-anchor="end">${format(v)}</text>`;
            }
            const ticks = 5;
            for (let k = 0; k <= ticks; k++) {
              const t = t0 + (t1 - t0) * k / ticks, xx = x(t);
              svg += `<line x1="${xx}" x2="${xx}" y1="${T + h}" y2="${T + h + 4}" stroke="#4a5160"/><text x="${xx}" y="${H - 6}" fill="#9aa4b2" font-size="11" text-anchor="${k == 0 ? 'start' : k == ticks ? 'end' : 'middle'}">${clock(t)}</text>`;
            }
            svg += `<line x1="${L}" x2="${L}" y1="${T}" y2="${T + h}" stroke="#4a5160"/><line x1="${L}" x2="${W - R}" y1="${T + h}" y2="${T + h}" stroke="#4a5160"/>`;
            let drawn = 0;
            o.series.forEach((s, k) => {
              const vs = stacked ? stacked[k] : s.values;
              if (stacked) {
                const below = k ? stacked[k - 1] : null;
                let pts = [];
                for (let i = 0; i < n; i++) pts.push(`${x(times[i]).toFixed(1)},${y(vs[i] || 0).toFixed(1)}`);
                for (let i = n - 1; i >= 0; i--) pts.push(`${x(times[i]).toFixed(1)},${y(below ? below[i] || 0 : 0).toFixed(1)}`);
                if (n) svg += `<polygon points="${pts.join(' ')}" fill="${s.color}" fill-opacity="0.75" stroke="none"/>`;
                if (k == 0) drawn = n;
                return;
              }
              let path = '', pen = false;
              for (let i = 0; i < n; i++) {
                const v = vs[i];
                if (v == null || !isFinite(v)) { pen = false; continue }
                path += (pen ? 'L' : 'M') + x(times[i]).toFixed(1) + ',' + y(v).toFixed(1);
                pen = true;
                if (k == 0) drawn++;
              }
              if (path) svg += `<path d="${path}" fill="none" stroke="${s.color}" stroke-width="1.8" stroke-linejoin="round"/>`;
            });
            svg += '</svg>';
            const legend = o.series.map(s => `<span><i style="background:${s.color}"></i>${s.name}</span>`).join('');
            el.innerHTML = svg + `<div class="legend">${legend}</div>`;
            el.dataset.points = String(drawn);
          }
          const esc = s => String(s).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
          return { fmt, chart, esc, clock };
        })();
        """#
}
