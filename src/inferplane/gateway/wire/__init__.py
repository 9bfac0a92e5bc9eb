"""HTTP/1.1 on raw asyncio protocols with httptools: the gateway's server side and its pooled
upstream client. No framework sits on the request path (see docs/benchmarks/gateway.md)."""
