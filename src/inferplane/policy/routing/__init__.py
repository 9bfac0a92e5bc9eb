"""The gateway's two-stage routing, as pure code that the gateway and the simulator both drive.

Stage one, `splits`: pick a route of a Service by weight (a deployment or an external
endpoint). Stage two, `registry`: a named strategy picks one endpoint among the route's ready
endpoints, after `regions` has narrowed them to the caller's own region unless that region is
saturated or has nothing ready.

endpoints (what the router knows of one endpoint, and its one `load()`), requests (what it
knows of one request), decisions (Routed or NoEndpoint), splits, regions, hashing (a stable
hash; never Python's salted one), strategies (round-robin, least-request, power-of-two,
session), prefixes (the prefix-aware index and strategy) and registry (names → factories,
and `route`, the whole of stage two).
"""
