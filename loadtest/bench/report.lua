-- Shared wrk done() hook: prints one machine-readable line (WRK_RESULT k=v ...) that the bench
-- scripts turn into JSON (wrk_json in bench/lib.sh).
-- Used directly (`wrk -s report.lua`) for plain GET runs, and loaded by append.lua.
-- Note: wrk's errors.status counts responses with status > 399 (what wrk prints as
-- "Non-2xx or 3xx responses").
done = function(summary, latency, requests)
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d duration_s=%.3f bytes=%d rps=%.1f lat_p50_ms=%.3f lat_p99_ms=%.3f lat_max_ms=%.3f " ..
      "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
      summary.requests, secs, summary.bytes, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
      e.connect, e.read, e.write, e.status, e.timeout))
end
