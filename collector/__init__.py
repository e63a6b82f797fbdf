"""The schoolmon collector."""
