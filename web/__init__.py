"""The HTTP machinery the route modules (handlers/) stand on: the base handler, errors and how
they are answered, the server's connection defences, the OpenAPI route declarations, request
bodies as JSON, Idempotency-Key, declared reads, the services handlers are handed, the metrics
kept in memory and the log redaction."""
