"""The REST API (FastAPI; OpenAPI at /docs), bearer-token auth."""
