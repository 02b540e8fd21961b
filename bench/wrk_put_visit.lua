-- wrk script of bench/put_visits.py: PUT /api/v1/visits/{id} of a new visit per request.
--
--   wrk -t2 -c8 -d10s --latency -s bench/wrk_put_visit.lua URL -- HOUSEHOLDS TOKEN VISITED_AT
--
-- HOUSEHOLDS holds one household id per line (read once per thread in `init`, before the
-- clock). Each request is a new visit: a fresh random UUID (version 4) for its id, the next
-- household of the list, revision 1. `done` prints every status seen, summed over the threads,
-- as `bench statuses 201=N,…`.

local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

statuses = {}

local households = {}
local headers
local visited_at
local n = 0

function init(args)
   for line in io.lines(args[1]) do
      if line ~= "" then
         table.insert(households, line)
      end
   end
   assert(#households > 0, "HOUSEHOLDS is empty")
   headers = {
      ["Authorization"] = "Bearer " .. args[2],
      ["Content-Type"] = "application/json",
      ["Accept"] = "application/json",
   }
   visited_at = args[3]
   -- A seed of its own per thread (and per run): ids never repeat between threads.
   math.randomseed(os.time() * 1000 + id * 7919 + math.floor(os.clock() * 1e6))
end

local function r16()
   return math.random(0, 0xffff)
end

local function uuid4()
   return string.format(
      "%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
      r16(), r16(), r16(), math.random(0, 0xfff), 0x8000 + math.random(0, 0x3fff),
      r16(), r16(), r16()
   )
end

function request()
   n = n + 1
   local household = households[(n % #households) + 1]
   local body = string.format(
      '{"revision":1,"household_id":"%s","visited_at":"%s","mode":"in_home",' ..
      '"findings":"户主慢性病用药正常, 光伏收益已到账","checks":{"food":"ok","housing":"ok"}}',
      household, visited_at
   )
   return wrk.format("PUT", "/api/v1/visits/" .. uuid4(), headers, body)
end

function response(status, _headers, _body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(_summary, _latency, _requests)
   local total = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         total[status] = (total[status] or 0) + count
      end
   end
   local parts = {}
   for status, count in pairs(total) do
      table.insert(parts, status .. "=" .. count)
   end
   table.sort(parts)
   io.write("bench statuses " .. table.concat(parts, ",") .. "\n")
end
