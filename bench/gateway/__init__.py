"""bench/gateway_overhead.py in parts: the upstream stub, the load generator, the gateways under
test, the measurement plan and the report."""
