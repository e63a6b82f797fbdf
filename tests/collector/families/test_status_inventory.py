"""The status and inventory families: line bodies, device columns, reported state."""
from schoolmon.collector.families import inventory, status
from schoolmon.collector.store import DeviceState


def test_status_line_bodies_and_state():
    assert status.line_bodies({"state": "online"}, 1700000000) == [
        ("status", " online=1 1700000000")]
    assert status.line_bodies({"state": "offline"}, 5) == [("status", " online=0 5")]
    assert status.reported_state({"state": "online"}) == (True, None)
    assert status.reported_state({"state": "offline", "reason": "shutdown"}) == (False, "shutdown")
    assert status.reported_state({"state": "offline"}) == (False, "lost")


def test_status_and_inventory_device_columns():
    st = DeviceState("pc-01", "79000701")
    status.device_columns(st, {"state": "online", "hb": 30, "agent": "0.2.0" + "x" * 40})
    assert st.hb == 30 and st.agent == "0.2.0" + "x" * 27
    inventory.device_columns(st, {"role": "lab", "hostname": "LAB-01", "os_name": "Windows",
                                  "os_version": "10", "os_edition": "Pro",
                                  "agent": "0.3.0"})
    assert (st.role, st.room, st.hostname, st.agent) == ("lab", None, "LAB-01", "0.3.0")
    assert st.os == "Windows 10 Pro"
    inventory.device_columns(st, {"room": "P2"})  # absent fields keep what was known
    assert (st.role, st.room, st.hostname) == ("lab", "P2", "LAB-01")
