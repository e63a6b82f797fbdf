"""Commands from the collector (``schoolmon/v1/{school}/{device}/cmd``): checked, then run.

The transport hands every JSON object that arrives on the device's ``cmd`` topic to
``CommandHandler.__call__``. A command is acted on only when all of this holds, else it is
refused — logged, counted in ``refused`` by reason, and nothing else happens:

- it validates against the catalogue's ``COMMANDS`` (``invalid``; an unknown ``cmd`` is
  ``unknown``);
- its ``id`` was never seen before (``replayed``): the collector re-sends a grant that is
  still valid when the device comes back online, and the broker may deliver twice. The
  last ``SEEN_KEEP`` ids are kept in ``<state_dir>/commands_seen.json`` (atomic write; a
  corrupt file is set aside and the list starts empty, never stopping the agent);
- it has not expired (``expired``). Two clocks, because an old lab PC's clock is often
  wrong: the agent's clock must not be past ``exp``, AND no more than ``ttl`` seconds
  (measured on the agent's own monotonic clock from the moment the command arrived) may
  pass before the test starts. The second rule holds even when the PC's clock is years
  behind, and catches a grant that waited behind a long security scan on the slow worker;
- no test is running or waiting (``busy``): one test per PC, one lease at a time;
- ``speedtest.enabled`` is true (``disabled``).

A grant starts one test on the runtime's slow worker (``Runtime.run_now``) with the grant's
server, budget, mode, trigger and lease id. When the light probe's latest result (at most
``PROBE_FRESH`` s old) says the link is down (``gw_ok`` or ``dom_ok`` false), the test is
not run: the result is ``ok`` false, ``reason`` ``link_down``, so the collector learns it.
"""
import json
import logging
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from schoolmon.protocol import COMMANDS, ProtocolError, validate_command

from .files import write_atomic

log = logging.getLogger("schoolmon.agent.commands")

SEEN_KEEP = 200
SEEN_FILE = "commands_seen.json"
#: A probe result older than this says nothing about the link now.
PROBE_FRESH = 900.0
REASONS = ("invalid", "unknown", "replayed", "expired", "busy", "disabled")


class SeenIds:
    """The last ``keep`` command ids, kept in a file across restarts."""

    def __init__(self, path: str, keep: int = SEEN_KEEP) -> None:
        self.path = path
        self.keep = keep
        self.ids: List[str] = []
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
            ids = data.get("ids") if isinstance(data, dict) else None
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ValueError("no list of ids")
            self.ids = ids[-keep:]
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("%s is unreadable (%s): set aside, starting with no seen ids", path,
                        exc)
            try:
                os.replace(path, path + ".corrupt")
            except OSError:
                pass

    def __contains__(self, cid: str) -> bool:
        return cid in self.ids

    def add(self, cid: str) -> None:
        self.ids = (self.ids + [cid])[-self.keep:]
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            write_atomic(self.path, json.dumps({"ids": self.ids}))
        except OSError as exc:  # a full disk: the id is still known until a restart
            log.warning("cannot save %s: %s", self.path, exc)


class CommandHandler:
    """``handler(cmd_dict)`` -> ``"started"`` or the reason it was refused."""

    def __init__(self, runtime: Any, family: Any, state_dir: str, enabled: bool = True,
                 clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self.family = family
        self.enabled = enabled
        self.clock = clock
        self.monotonic = monotonic
        self.seen = SeenIds(os.path.join(state_dir, SEEN_FILE))
        self.refused: Dict[str, int] = {r: 0 for r in REASONS}
        self.started = 0
        self._lock = threading.Lock()

    def _refuse(self, reason: str, detail: str) -> str:
        self.refused[reason] += 1
        log.warning("command refused (%s): %s", reason, detail)
        return reason

    def __call__(self, cmd: Dict[str, Any]) -> str:
        with self._lock:  # the transport calls from one thread; tests from several
            return self._handle(cmd)

    def _handle(self, cmd: Dict[str, Any]) -> str:
        arrived = self.monotonic()
        name = cmd.get("cmd") if isinstance(cmd, dict) else None
        if not isinstance(name, str) or name not in COMMANDS:
            return self._refuse("unknown", "command %r is not known to this agent" % (name,))
        try:
            validate_command(cmd)
        except ProtocolError as exc:
            return self._refuse("invalid", "%s: %s" % (name, exc.detail))
        cid = cmd["id"]
        if cid in self.seen:
            return self._refuse("replayed", "%s %s was seen before" % (name, cid))
        self.seen.add(cid)  # refused or not, this id is done with
        now = self.clock()
        if now > cmd["exp"]:
            return self._refuse("expired", "%s %s expired %.0f s ago by this PC's clock"
                                % (name, cid, now - cmd["exp"]))
        if not self.enabled:
            return self._refuse("disabled", "speedtest.enabled is false")
        if self.runtime.busy("speedtest"):
            return self._refuse("busy", "%s %s arrived while a test runs" % (name, cid))
        job = _GrantedTest(self, cmd, arrived)
        if not self.runtime.run_now("speedtest", job):
            return self._refuse("busy", "%s %s arrived while a test runs" % (name, cid))
        self.started += 1
        log.info("speedtest %s granted: server %s, budget %d B, mode %s", cid,
                 cmd.get("server") or "speedtest.net", cmd["budget"], cmd["mode"])
        return "started"


class _GrantedTest:
    """What the slow worker runs for one grant."""

    def __init__(self, handler: CommandHandler, cmd: Dict[str, Any], arrived: float) -> None:
        self.handler = handler
        self.cmd = cmd
        self.arrived = arrived

    def collect(self) -> Optional[Dict[str, Any]]:
        h, cmd = self.handler, self.cmd
        waited = h.monotonic() - self.arrived
        if waited > cmd["ttl"] or h.clock() > cmd["exp"]:
            h._refuse("expired", "speedtest %s waited %.0f s for the worker (ttl %.0f s)"
                      % (cmd["id"], waited, cmd["ttl"]))
            return None
        base = {"lease": cmd["id"], "trigger": cmd.get("trigger") or "command",
                "mode": cmd["mode"]}
        probe = h.runtime.latest("probe", PROBE_FRESH)
        if probe is not None and (probe.get("gw_ok") is False or probe.get("dom_ok") is False):
            log.info("speedtest %s not run: the light probe says the link is down", cmd["id"])
            return dict(base, ok=False, reason="link_down", bytes_rx=0, bytes_tx=0)
        return h.family.run(server=cmd.get("server", ""), budget=cmd["budget"],
                            mode=cmd["mode"], trigger=base["trigger"], lease=cmd["id"])
