"""Resource schemas: the contract the control plane, agents, gateway, CLI and client share.

meta (envelope), registry and kinds (the table of kinds), one module per concept for the kinds
(fleet, models, deployments, engines, autoscaling, replicas, services, apikeys, events),
values (shared value types), selectors, validation, yamlio, explain, schema, and errors.
"""
