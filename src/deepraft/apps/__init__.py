"""Layer 4, applications: the command line, the demo, the HTTP service and demo messenger."""
