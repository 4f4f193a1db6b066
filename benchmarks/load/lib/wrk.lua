-- wrk script of benchmarks/load/http.sh: optional pipelining, and a machine-readable summary.
--
--   wrk ... -s wrk.lua URL -- DEPTH
--
-- DEPTH (default 1) is how many requests each write carries. With DEPTH > 1 every write is DEPTH copies
-- of the request for URL, sent back to back (HTTP/1.1 pipelining, RFC 9112 §9.3.2); wrk counts each
-- response as one request, and measures each response's latency from the start of the batch's write.
-- With DEPTH 1 no request() function is defined, so wrk keeps its precomputed static request (the
-- fastest path of the load generator).
--
-- done() prints one line that http.sh parses:
--   SB_WRK requests=N duration_us=N bytes=N connect=N read=N write=N status=N timeout=N p50_us=N p90_us=N
--          p99_us=N max_us=N
-- (one line; the error counts are wrk's: socket errors, responses with status > 399, and timeouts).

init = function(args)
   local depth = tonumber(args[1]) or 1
   if depth > 1 then
      local batch = string.rep(wrk.format(), depth)
      request = function()
         return batch
      end
   end
end

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "SB_WRK requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d " ..
      "p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
