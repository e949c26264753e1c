-- wrk script: small appends. Each request is a POST of an APPEND_BYTES (default 100) byte body
-- with Content-Type: application/octet-stream to /v1/stream/<APPEND_PREFIX><k>, k cycling
-- round-robin through 0 .. APPEND_STREAMS-1 request by request (each wrk thread starts at a
-- different k), so every stream gets an equal share whatever -t and -c are.
--
-- Environment (set by bench-origin.sh and bench-storage.sh):
--   BENCH_DIR       directory holding report.lua (required)
--   APPEND_STREAMS  number of streams (default 1)
--   APPEND_PREFIX   stream name prefix (default "append-")
--   APPEND_BYTES    body size in bytes (default 100)
-- The streams must exist (PUT with the same Content-Type) before the run.
dofile(os.getenv("BENCH_DIR") .. "/report.lua")

local streams = tonumber(os.getenv("APPEND_STREAMS") or "1")
local prefix = os.getenv("APPEND_PREFIX") or "append-"
local size = tonumber(os.getenv("APPEND_BYTES") or "100")
local threads = 0

setup = function(thread)
   thread:set("first", threads % streams)
   threads = threads + 1
end

local reqs = {}
local next_index = 0

init = function(args)
   local body = string.rep("a", size - 1) .. "\n"
   local headers = { ["Content-Type"] = "application/octet-stream" }
   for k = 0, streams - 1 do
      reqs[k] = wrk.format("POST", "/v1/stream/" .. prefix .. tostring(k), headers, body)
   end
   next_index = first or 0
end

request = function()
   local r = reqs[next_index]
   next_index = (next_index + 1) % streams
   return r
end
