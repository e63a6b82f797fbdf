"""``schoolmon-collector demo`` (what ``make demo`` runs): the whole system on this machine.

- **Broker**: ``mqtt.url`` when configured; otherwise an embedded one, private to the demo
  and stopped with it: a Mosquitto child process on a free loopback port when Mosquitto is
  installed (``--broker auto``, the default), or amqtt in-process (``--broker amqtt``).
  amqtt 0.12 speaks MQTT 3.1.1 only (Last Will and retained messages work with paho 3.1.1
  clients), so with amqtt the collector and the agent use ``mqtt.protocol = "3.1.1"``;
  ``auto`` prefers Mosquitto (MQTT 5, a persistent session that really keeps messages).
- **State store**: SQLite in the demo folder (``./var/demo/schoolmon.db``, emptied at start).
- **Registry**: seeded from ``simulate.province_fixture`` (areas of Lào Cai, a few dozen
  schools of every level).
- **The province's past 30 days** (``simulate.write_history``): rollups, status history
  and the devices that went away days ago, written before anything starts, so every chart
  has history from the first minute.
- **Collector service** and the **API + web page** on ``api.listen`` (127.0.0.1:8080, or a
  free port when that one is taken).
- **One real agent**: ``schoolmon-agent run`` as a child process, reporting this machine
  as an office PC of the first school.
- **Simulator**: the province's devices (old Windows 7, slow, nearly full) publishing the
  real wire format, their security facts included (``simulate.posture``: schools planned to
  come out Đạt, Cần cải thiện, Không đạt and Không đủ dữ liệu); those that went away in the
  past stay away (``live_province``).

Demo mode is the only place a default admin token is accepted: ``demo-admin-token``
unless ``api.admin_token`` is set. Ctrl-C (or SIGTERM) stops everything in order and waits
for every child process.

The package: ``processes`` (child-process helpers), ``brokers`` (the embedded brokers),
``runner`` (the demo).
"""
from .brokers import AmqttBroker, MosquittoBroker, find_mosquitto
from .runner import DEMO_TOKEN, run_demo

__all__ = ["DEMO_TOKEN", "AmqttBroker", "MosquittoBroker", "find_mosquitto", "run_demo"]
