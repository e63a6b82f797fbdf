"""The schoolmon agent: runs on school PCs (Python 3.8+), reports over MQTT."""
__version__ = "0.1.0"
