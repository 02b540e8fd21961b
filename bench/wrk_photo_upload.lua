-- wrk script of bench/photo_upload.py: upload distinct photos as fast as the server takes them.
--
--   wrk -t2 -c8 -d10s -s bench/wrk_photo_upload.lua URL -- MODE BASE LIST TOKEN THREADS
--
-- MODE put: one PUT /api/v1/photos/{sha256}?household_id=… with the whole photo.
-- MODE tus: POST /api/v1/uploads, then one PATCH of the whole photo to its Location.
-- Photo n is the JPEG file BASE followed by the ASCII suffix of line n of LIST (decoders stop at
-- the JPEG's end: the same picture, a sha256 of its own). LIST lines are
-- `sha256 TAB suffix TAB household_id TAB Upload-Metadata`; thread i of THREADS takes the lines
-- i, i + THREADS, … A thread that runs out stops and `done` says so. (wrk calls `request` once
-- before the run to check what it returns: the first photo of thread 0 is never sent.)
--
-- wrk's callbacks are per thread, not per connection, and answers come back in any order: a
-- request carries its photo's number in X-Request-ID, which the server echoes. A 201 to a POST
-- queues the PATCH, sent by the thread's next free connection (the upload belongs to the
-- caller, not to a connection). A photo's latency runs from its first request to its last
-- answer; `done` prints the photos finished, their latency percentiles and every status seen.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now()
   ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
   return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

-- In the main Lua state: the threads, for `done`.
local threads = {}

function setup(thread)
   thread:set("id", #threads)
   table.insert(threads, thread)
end

-- In each thread's state; globals so that `done` can read them with thread:get.
photos_done = 0
latencies = {}
statuses = {}
exhausted = false

local mode, auth, base
local photos = {}
local started = {}
local patches = {}  -- {location, n} of created uploads, first in first out
local next_photo = 0

function init(args)
   mode, auth = args[1], "Bearer " .. args[4]
   assert(mode == "put" or mode == "tus", "MODE must be put or tus")
   local file = assert(io.open(args[2], "rb"))
   base = file:read("*a")
   file:close()
   local thread_count, line_number = tonumber(args[5]), 0
   for line in io.lines(args[3]) do
      if line_number % thread_count == id then
         local sha256, suffix, household, metadata =
            line:match("^(%x+)\t([^\t]+)\t([^\t]+)\t(.+)$")
         assert(sha256, "bad LIST line: " .. line)
         table.insert(photos, {
            sha256 = sha256, suffix = suffix, household = household, metadata = metadata,
         })
      end
      line_number = line_number + 1
   end
end

local function header(headers, name)
   for key, value in pairs(headers) do
      if key:lower() == name then
         return value
      end
   end
end

function request()
   local patch = table.remove(patches, 1)
   if patch then
      return wrk.format("PATCH", patch.location, {
         ["Authorization"] = auth,
         ["Tus-Resumable"] = "1.0.0",
         ["Upload-Offset"] = "0",
         ["Content-Type"] = "application/offset+octet-stream",
         ["X-Request-ID"] = tostring(patch.n),
      }, base .. photos[patch.n].suffix)
   end
   next_photo = next_photo + 1
   local photo = photos[next_photo]
   if photo == nil then
      exhausted = true
      wrk.thread:stop()
      return wrk.format("GET", "/readyz")
   end
   started[next_photo] = now()
   if mode == "put" then
      return wrk.format("PUT", "/api/v1/photos/" .. photo.sha256 .. "?household_id=" .. photo.household, {
         ["Authorization"] = auth,
         ["Content-Type"] = "image/jpeg",
         ["X-Request-ID"] = tostring(next_photo),
      }, base .. photo.suffix)
   end
   return wrk.format("POST", "/api/v1/uploads", {
      ["Authorization"] = auth,
      ["Tus-Resumable"] = "1.0.0",
      ["Upload-Length"] = tostring(#base + #photo.suffix),
      ["Upload-Metadata"] = photo.metadata,
      ["X-Request-ID"] = tostring(next_photo),
   }, "")
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   local n = tonumber(header(headers, "x-request-id"))
   if n == nil then
      return  -- the /readyz of a thread that ran out
   end
   if mode == "tus" and status == 201 then
      table.insert(patches, {location = header(headers, "location"), n = n})
   elseif (mode == "put" and status == 201) or (mode == "tus" and status == 204) then
      photos_done = photos_done + 1
      table.insert(latencies, now() - started[n])
   end
end

function done(summary, latency, requests)
   local finished, ran_out, counts, all = 0, false, {}, {}
   for _, thread in ipairs(threads) do
      finished = finished + thread:get("photos_done")
      ran_out = ran_out or thread:get("exhausted")
      for status, count in pairs(thread:get("statuses")) do
         counts[status] = (counts[status] or 0) + count
      end
      for _, seconds in ipairs(thread:get("latencies")) do
         table.insert(all, seconds)
      end
   end
   table.sort(all)
   local function percentile(q)
      return #all > 0 and all[math.max(1, math.ceil(#all * q))] * 1000 or 0
   end
   local seen = {}
   for status, count in pairs(counts) do
      table.insert(seen, status .. "=" .. count)
   end
   table.sort(seen)
   io.write(string.format("bench photos %d\n", finished))
   io.write(string.format("bench seconds %.6f\n", summary.duration / 1e6))
   io.write(string.format("bench p50_ms %.3f\n", percentile(0.50)))
   io.write(string.format("bench p99_ms %.3f\n", percentile(0.99)))
   io.write(string.format("bench statuses %s\n", table.concat(seen, ",")))
   io.write(string.format("bench exhausted %s\n", tostring(ran_out)))
end
