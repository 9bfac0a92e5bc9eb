"""The engine's HTTP server (OpenAI and vLLM routes)."""
