"""The base layer: errors, atomic artifacts, boards. Imports nothing else from fpgadl."""
