"""Inference into a plane behind NAT: the plane's edge dials out to the global gateway over
one WebSocket, and the global gateway's connections to that plane's engines are carried over
it as multiplexed byte streams (frames.py; hub.py is the global side, edge.py the plane's)."""
