-- wrk script of bench/progress_read.py: GET a random path of a list, counting every status.
--
--   wrk -t2 -c8 -d10s --latency -s bench/wrk_progress.lua URL -- PATHS TOKEN
--
-- PATHS holds one path per line (read once per thread in `init`, before the clock); each
-- request takes one at random, with `Authorization: Bearer TOKEN`. `done` prints every status
-- seen, summed over the threads, as `bench statuses 200=N,…`.

-- In the main Lua state: the threads, for `done`.
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

-- In each thread's state; a global so that `done` can read it with thread:get.
statuses = {}

local paths = {}
local headers

function init(args)
   for line in io.lines(args[1]) do
      if line ~= "" then
         table.insert(paths, line)
      end
   end
   assert(#paths > 0, "PATHS is empty")
   headers = {["Authorization"] = "Bearer " .. args[2], ["Accept"] = "application/json"}
   math.randomseed(os.time() + 7919 * id)
end

function request()
   return wrk.format("GET", paths[math.random(#paths)], headers)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local counts, seen = {}, {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + count
      end
   end
   for status, count in pairs(counts) do
      table.insert(seen, status .. "=" .. count)
   end
   table.sort(seen)
   io.write(string.format("bench statuses %s\n", table.concat(seen, ",")))
end
