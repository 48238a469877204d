"""Bots: small classes that react to domain events (later issues)."""
