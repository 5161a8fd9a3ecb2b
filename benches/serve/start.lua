-- wrk -s benches/serve/start.lua: POST /v1/sagas/place_order?wait=30s, a new order
-- (and business key) per request, answered once the saga completed. Items i0..i255 and
-- accounts a0..a255 spread the orders over many rows (store.json beside this file:
-- seed it with `rulesaga saga seed benches/serve/store.json --db DB`).
local n = 0
-- keys differ between runs: a key used before answers at once with its saga
local run = os.time()
local thread_id = 0
setup = function(thread)
  thread:set("id", thread_id)
  thread_id = thread_id + 1
end
request = function()
  n = n + 1
  local order = string.format("o-%d-%d-%d", run, id, n)
  local row = (id * 7919 + n) % 256
  local body = string.format('{"input": {"order_id": "%s", "customer": "a%d", "sku": "i%d", "quantity": 1, "amount": 1}}', order, row, row)
  return wrk.format("POST", "/v1/sagas/place_order?wait=30s",
    {["Content-Type"] = "application/json", ["Idempotency-Key"] = order}, body)
end
response = function(status, headers, body)
  if status ~= 200 then
    print("status " .. status .. ": " .. body)
  end
end
