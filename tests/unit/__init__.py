"""Tests of pure rules: no server, no database; `pytest tests/unit` runs them alone in seconds."""
