"""Placing replicas on the fleet: the two-level scheduler and its parts.

demands (what a replica asks), state (free capacity per node and device), filters (clusters,
then pools, each with its reason), fits (best-fit nodes and devices in one pool), index
(free-capacity buckets), candidates (static survivors per demand shape), strategies
(binpack, spread, cheapest, cached), reasons (why a replica fits nowhere), decisions,
bindings (a binding written into a Pool's status) and scheduler (the whole).
"""
