"""The HTTP service (FastAPI) and the demo messenger; needs the ``serve`` extra."""
