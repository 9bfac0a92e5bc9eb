"""The gateway's two-stage routing, as pure code that the gateway and the simulator both drive.

Stage one, `splits`: pick a route of a Service by weight (a deployment or an external
endpoint). Stage two, `registry`: a named strategy picks one endpoint among the route's ready
endpoints, after `regions` has narrowed them to the caller's own region unless that region is
saturated or has nothing ready. After a failure, `retries` repeats both stages on endpoints
not yet tried, and says which answers are worth it and when to stop; past the service,
`fallbacks` orders the fallback chain and judges, from `health`'s windows of recent outcomes,
whether a step is skipped.

endpoints (what the router knows of one endpoint, and its one `load()`), requests (what it
knows of one request), decisions (Routed or NoEndpoint), splits, regions, hashing (a stable
hash; never Python's salted one), strategies (round-robin, least-request, power-of-two,
session), prefixes (the prefix-aware index and strategy) and registry (names → factories,
and `route`, the whole of stage two), retries (retryable statuses, the redraw, the attempt and
resume limits), fallbacks (the chain and its health verdict) and health (windows of outcomes,
fed by the caller).
"""
