-- wrk -s benches/serve/eval_batch.lua: 1,000 records per request
local records = {}
local tiers = {"standard", "premium", "vip"}
for i = 1, 1000 do
  records[i] = string.format('{"name": "c%d", "tier": "%s", "total": %d, "days": %d}',
    i, tiers[(i % 3) + 1], (i * 37) % 300, (i * 11) % 60)
end
wrk.method = "POST"
wrk.path = "/v1/rules/discount:eval"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs": [' .. table.concat(records, ",") .. ']}'
