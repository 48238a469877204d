"""Clients of outside systems: ticketing, SMTP, LLM, knowledge retrieval (later issues)."""
