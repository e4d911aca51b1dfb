"""The HTTP layer: handlers parse and answer; storage does the work."""
