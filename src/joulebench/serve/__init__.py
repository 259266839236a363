"""`joulebench serve`: a read-only live dashboard, JSON API and Prometheus /metrics.

Imported only by the `serve` command (starlette and uvicorn stay off every other path).
"""
