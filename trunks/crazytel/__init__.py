"""Crazytel, the upstream, and nothing else: its contract, errors, parsing, HTTP client and rate limiter."""
