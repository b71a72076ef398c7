"""The run: a list of named stages over a run directory, their report and the engine diff."""
