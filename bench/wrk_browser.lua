-- wrk script for T5 (`python -m bench`): send a browser's requests in turn, count the statuses.
--
--   wrk ... -s wrk_browser.lua URL -- CYCLE_FILE
--
-- CYCLE_FILE (written by bench/browser.py) holds the requests, each as '<status> <length>\n'
-- and the raw bytes: the status is the one that request must get (200 or 304).  request()
-- hands them out in turn and counts what it sent per expected status; response() counts
-- what came back per status.  wrk cannot say which response answers which request, so
-- bench/browser.py compares the totals.  The summary line is wrk_json.lua's, with those
-- counts added.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "wrk_json.lua")

local requests, expected, n, i = {}, {}, 0, 0
sent_200, sent_304, got_200, got_304, got_other = 0, 0, 0, 0, 0

function init(args)
   local f = assert(io.open(args[1], "rb"))
   local data = f:read("*a")
   f:close()
   local pos = 1
   while pos <= #data do
      local status, length, after = data:match("^(%d+) (%d+)\n()", pos)
      assert(status, "bad cycle file " .. args[1])
      n = n + 1
      expected[n] = tonumber(status)
      requests[n] = data:sub(after, after + tonumber(length) - 1)
      pos = after + tonumber(length)
   end
   assert(n > 0, "empty cycle file " .. args[1])
end

function request()
   if verify_pending then
      -- wrk calls the first thread's request() once before any connection opens, to see
      -- whether it pipelines; that request is never sent, so it is not counted.
      verify_pending = false
      return requests[1]
   end
   i = i % n + 1
   if expected[i] == 304 then sent_304 = sent_304 + 1 else sent_200 = sent_200 + 1 end
   return requests[i]
end

function response(status, headers, body)
   if status == 200 then got_200 = got_200 + 1
   elseif status == 304 then got_304 = got_304 + 1
   else got_other = got_other + 1 end
end

-- setup() runs in the main Lua state once per wrk thread; done() reads the threads' counters.
local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("verify_pending", #threads == 1)
end

function extra_json()
   local t = {sent_200 = 0, sent_304 = 0, got_200 = 0, got_304 = 0, got_other = 0}
   for _, thread in ipairs(threads) do
      for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
   end
   return string.format(',"browser":{"sent":{"200":%.0f,"304":%.0f},"got":{"200":%.0f,"304":%.0f,"other":%.0f}}',
                        t.sent_200, t.sent_304, t.got_200, t.got_304, t.got_other)
end
