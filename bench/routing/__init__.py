"""Parts of bench/routing_live.py: workloads, engine counters, the client, the fleet, the report."""
