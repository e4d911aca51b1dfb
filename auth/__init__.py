"""Identity: passwords, refresh tokens and sessions, roles and permissions, rate limits."""
