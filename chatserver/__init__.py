"""Cloud Advisor (云顾问): the chat server."""
