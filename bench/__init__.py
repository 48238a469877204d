"""The benchmark: a lean load generator, a reference server (the bare python-socketio + aiohttp stack) and the
scenarios that run against it and the real server side by side. `python -m bench --help`."""
