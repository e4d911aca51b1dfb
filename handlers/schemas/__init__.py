"""pydantic models of every request and response; they also produce /openapi.json."""
