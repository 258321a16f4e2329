-- wrk script: small synchronous A1111 txt2img jobs (64x64, 2 steps), every request the same.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"prompt": "a cat", "steps": 2, "width": 64, "height": 64, "seed": 1, "cfg_scale": 5, "sampler_name": "Euler"}'

local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  io.write(string.format("txt2img: %d requests, %d socket errors (connect %d, read %d, write %d, timeout %d), non-2xx %d\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout, summary.errors.status))
end
