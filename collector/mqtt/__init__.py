"""MQTT for the collector: client set-up from configuration (``client``), paho's Client with
a bulk receive path (``fast_client``) and the packet codec shared with the simulator
(``codec``)."""
from .client import (
                     MAX_RECEIVE_MAXIMUM,
                     SESSION_EXPIRY,
                     ClientIdTaken,
                     claim_client_id,
                     connect,
                     make_client,
                     subscription,
)
from .fast_client import FastClient

__all__ = ["MAX_RECEIVE_MAXIMUM", "SESSION_EXPIRY", "ClientIdTaken", "FastClient",
           "claim_client_id", "connect", "make_client", "subscription"]
