"""Thin Lambda handlers: parse the event, call one use case, return a JSON-able dump."""
