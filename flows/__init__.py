"""The flows this deployment runs (one YAML file per flow, with their templates), and the Python
that reads,
validates and compiles flow files."""
