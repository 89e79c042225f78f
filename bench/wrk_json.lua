-- wrk script for `python -m bench`: print the run's summary as one JSON line.
--
-- Only done() is defined.  Defining request() or response() would make wrk call into Lua
-- for every request (and build a header table per response), which costs more than some
-- servers spend on the request.  So non-2xx is wrk's own errors.status (status >= 400).
-- The line starts with WRK_JSON so bench/loadgen.py can find it among wrk's text output.
-- %.0f rather than %d: byte counts pass 2^31, which %d may not format.
-- A script that loads this one (wrk_browser.lua) may define extra_json(), returning more
-- ',"key":value' members for the line.

-- A run with no completed response has no latency samples: NaN or huge values would not
-- be valid JSON numbers, so they are written as 0 (bench/loadgen.py reads them as "none").
local function finite(x)
   if x ~= x or x == math.huge or x == -math.huge or x >= 2^53 then return 0 end
   return x
end

function done(summary, latency, requests)
   local e = summary.errors
   local p = function(q) return finite(latency:percentile(q)) end
   io.write(string.format(
      'WRK_JSON {"requests":%.0f,"bytes":%.0f,"duration_us":%.0f,' ..
      '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
      '"latency_us":{"min":%.0f,"mean":%.1f,"stdev":%.1f,"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f}%s}\n',
      summary.requests, summary.bytes, summary.duration,
      e.connect, e.read, e.write, e.status, e.timeout,
      finite(latency.min), finite(latency.mean), finite(latency.stdev),
      p(50), p(90), p(99), finite(latency.max), extra_json and extra_json() or ""))
end
