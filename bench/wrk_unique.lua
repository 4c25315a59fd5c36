-- wrk script for the cache benchmark: like wrk_post.lua (whose body, auth and BENCH_JSON
-- report it reuses), but the word UNIQUE in the body becomes "<WRK_UNIQUE_TAG>-<thread>-<n>"
-- on every request, so no two requests are the same (every one a cache miss).
--   WRK_LUA_DIR=bench WRK_BODY_FILE=body.json WRK_UNIQUE_TAG=r1 wrk -s bench/wrk_unique.lua URL

dofile(os.getenv("WRK_LUA_DIR") .. "/wrk_post.lua")

local template = wrk.body
local tag = os.getenv("WRK_UNIQUE_TAG") or "u"
local threads = 0
local counter = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

request = function()
  counter = counter + 1
  local body = template:gsub("UNIQUE", tag .. "-" .. tostring(tid or 0) .. "-" .. counter)
  return wrk.format(nil, nil, nil, body)
end
