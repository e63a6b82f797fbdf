"""The schoolmon agent."""
