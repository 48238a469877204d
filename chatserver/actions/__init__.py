"""Actions: the only code that writes to the store and publishes events.

One module per subject. Each action takes the `Services` and the acting user (from the verified
token, never a payload), checks what that user may do, writes, then publishes a domain event.
Read actions (history, room lists) live beside them so permission checks have one home.
"""
