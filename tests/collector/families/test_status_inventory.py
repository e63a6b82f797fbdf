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


def test_os_summary_names_the_os_once():
    # Linux: the distribution's own name holds the version ("Linux 20.04 Ubuntu 20.04.6 LTS"
    # said it twice)
    assert inventory.os_summary({"os_name": "Linux", "os_version": "20.04",
                                 "os_edition": "Ubuntu 20.04.6 LTS"}) == "Ubuntu 20.04.6 LTS"
    assert inventory.os_summary({"os_name": "Linux", "os_version": "12", "os_edition":
                                 "Debian GNU/Linux 12 (bookworm)"}) == \
        "Debian GNU/Linux 12 (bookworm)"
    # a router: "OpenWrt" inside "OpenWrt 21.02"
    assert inventory.os_summary({"os_name": "Linux", "os_version": "OpenWrt 21.02",
                                 "os_edition": "OpenWrt"}) == "OpenWrt 21.02"
    assert inventory.os_summary({"os_name": "Linux", "os_version": "22.04"}) == "Linux 22.04"
    # Windows as before
    assert inventory.os_summary({"os_name": "Windows", "os_version": "10", "os_edition": "Pro",
                                 "os_display": "22H2"}) == "Windows 10 Pro 22H2"
    assert inventory.os_summary({"os_name": "Windows", "os_version": "10",
                                 "os_edition": "Windows 10 Pro", "os_display": "22H2"}) == \
        "Windows 10 Pro 22H2"
