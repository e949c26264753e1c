/// The live dashboard at `/__edge/`: one self-contained page (no external scripts or styles)
/// that polls the stats JSON every second and charts it.
enum EdgeDashboard {
    static func html(statsPath: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>durable-streams edge</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        body{font:14px system-ui,sans-serif;margin:24px;background:#0f1115;color:#e6e6e6}
        h1{font-size:18px;margin:0 0 16px}
        .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:16px}
        .card{background:#181b22;border-radius:8px;padding:12px}
        .label{color:#9aa4b2;font-size:12px}.value{font-size:22px;margin:4px 0 8px}
        canvas{width:100%;height:90px}
        </style></head><body>
        <h1>durable-streams edge <span class="label" id="status">connecting…</span></h1>
        <div class="grid" id="grid"></div>
        <script>
        const charts=[
          {id:'hit',label:'Hit rate',fmt:v=>(v*100).toFixed(1)+' %'},
          {id:'collapse',label:'Collapse ratio (client ÷ upstream requests)',fmt:v=>v.toFixed(1)+'×'},
          {id:'ups',label:'Upstream requests / s',fmt:v=>v.toFixed(1)},
          {id:'reqs',label:'Client requests / s',fmt:v=>v.toFixed(1)},
          {id:'saved',label:'Bytes served from cache / s',fmt:v=>human(v)+'/s'},
          {id:'conns',label:'Open client connections',fmt:v=>v.toFixed(0)},
          {id:'cache',label:'Cache size',fmt:v=>human(v)}];
        const hist={};let last=null;
        function human(b){const u=['B','KiB','MiB','GiB'];let i=0;while(b>=1024&&i<3){b/=1024;i++}return b.toFixed(1)+' '+u[i]}
        const grid=document.getElementById('grid');
        for(const c of charts){hist[c.id]=[];grid.insertAdjacentHTML('beforeend',
          `<div class="card"><div class="label">${c.label}</div><div class="value" id="v-${c.id}">–</div><canvas id="c-${c.id}" width="600" height="90"></canvas></div>`)}
        function draw(id){const cv=document.getElementById('c-'+id),x=cv.getContext('2d'),d=hist[id];
          x.clearRect(0,0,cv.width,cv.height);if(d.length<2)return;const max=Math.max(...d,1e-9);
          x.strokeStyle='#4fc3f7';x.lineWidth=2;x.beginPath();
          d.forEach((v,i)=>{const px=i*cv.width/(120-1),py=cv.height-4-(v/max)*(cv.height-8);i?x.lineTo(px,py):x.moveTo(px,py)});x.stroke()}
        function push(id,v){const d=hist[id];d.push(v);if(d.length>120)d.shift();
          document.getElementById('v-'+id).textContent=charts.find(c=>c.id===id).fmt(v);draw(id)}
        async function tick(){try{const s=await (await fetch('\(statsPath)',{cache:'no-store'})).json();const now=Date.now();
          if(last){const dt=(now-last.t)/1000;
            push('ups',(s.upstreamRequestsTotal-last.s.upstreamRequestsTotal)/dt);
            push('reqs',(s.clientRequestsTotal-last.s.clientRequestsTotal)/dt);
            push('saved',(s.bytesFromCache-last.s.bytesFromCache)/dt)}
          push('hit',s.hitRate);push('collapse',s.collapseRatio);push('conns',s.openConnections);push('cache',s.cache.bytes);
          last={t:now,s};document.getElementById('status').textContent='live · '+new Date().toLocaleTimeString()}
          catch(e){document.getElementById('status').textContent='stats unavailable'}}
        tick();setInterval(tick,1000);
        </script></body></html>
        """
    }
}
