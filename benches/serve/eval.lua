-- wrk -s benches/serve/eval.lua: one record per request to POST /v1/rules/discount:eval
wrk.method = "POST"
wrk.path = "/v1/rules/discount:eval"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"input": {"name": "Bob", "tier": "standard", "total": 150, "days": 15}}'
