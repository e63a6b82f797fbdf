"""The shared configuration loader: file + environment, errors that name the key."""
import pytest
from schoolmon.protocol.settings import (
    ConfigError,
    Key,
    check_mqtt_url,
    load,
    mqtt_endpoint,
    reference,
)

SCHEMA = {
    "mqtt": {
        "url": Key("str", "mqtt://localhost:1883", "Broker.", check=check_mqtt_url),
        "password": Key("str", "", "Secret.", secret=True),
        "keepalive": Key("int", 60, "Seconds.", minimum=5),
    },
    "agent": {
        "role": Key("choice", "lab", "Role.", choices=("lab", "office")),
        "debug": Key("bool", False, "Debug."),
        "tags": Key("list", [], "Tags."),
        "device_id": Key("str", "", "Id."),
    },
}


def write(tmp_path, text):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_defaults_file_then_environment(tmp_path):
    path = write(tmp_path, '[mqtt]\nurl = "mqtt://broker:1884"\nkeepalive = 30\n')
    cfg = load(SCHEMA, path, env={"SCHOOLMON_MQTT_KEEPALIVE": "45",
                                  "SCHOOLMON_AGENT_DEBUG": "yes",
                                  "SCHOOLMON_AGENT_DEVICE_ID": "x-1",
                                  "SCHOOLMON_AGENT_TAGS": "a, b"})
    assert cfg.mqtt.url == "mqtt://broker:1884"
    assert cfg.mqtt.keepalive == 45
    assert cfg.agent.debug is True and cfg.agent.role == "lab"
    assert cfg.agent.device_id == "x-1" and cfg.agent.tags == ["a", "b"]


@pytest.mark.parametrize("text, needle", [
    ("[mqtt]\nurl = 5\n", "mqtt.url"),
    ("[mqtt]\nurl = \"http://x\"\n", "mqtt.url"),
    ("[mqtt]\nurl = \"mqtt://x:99999\"\n", "mqtt.url"),
    ("[mqtt]\nkeepalive = 1\n", "mqtt.keepalive"),
    ("[mqtt]\nkeepalive = \"60\"\n", "mqtt.keepalive"),
    ("[mqtt]\nkeepalive = 6.5\n", "mqtt.keepalive"),
    ("[mqtt]\nbroker = \"x\"\n", "mqtt.broker"),
    ("[nosuch]\nx = 1\n", "[nosuch]"),
    ("[agent]\nrole = \"teacher\"\n", "agent.role"),
    ("[agent]\ndebug = \"maybe\"\n", "agent.debug"),
    ("mqtt = 3\n", "mqtt"),
    ("[mqtt\nurl=", "not valid TOML"),
])
def test_bad_files_name_the_key(tmp_path, text, needle):
    with pytest.raises(ConfigError) as exc:
        load(SCHEMA, write(tmp_path, text), env={})
    assert needle in str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load(SCHEMA, str(tmp_path / "absent.toml"), env={})


@pytest.mark.parametrize("var, value, needle", [
    ("SCHOOLMON_MQTT_KEEPALIVE", "soon", "SCHOOLMON_MQTT_KEEPALIVE"),
    ("SCHOOLMON_MQTT_PORT", "1", "mqtt.port"),
    ("SCHOOLMON_AGENT_DEBUG", "2", "agent.debug"),
])
def test_bad_environment_names_the_variable(var, value, needle):
    with pytest.raises(ConfigError) as exc:
        load(SCHEMA, None, env={var: value})
    assert needle in str(exc.value)


def test_variables_of_the_other_program_are_not_errors():
    cfg = load(SCHEMA, None, env={"SCHOOLMON_API_LISTEN": "0.0.0.0:1"})
    assert cfg.mqtt.keepalive == 60


def test_secrets_are_never_echoed(tmp_path):
    schema = {"mqtt": {"password": Key("int", 0, "x", secret=True)}}
    with pytest.raises(ConfigError) as exc:
        load(schema, write(tmp_path, '[mqtt]\npassword = "hunter2-topsecret"\n'), env={})
    assert "hunter2" not in str(exc.value)


def test_endpoint_and_reference():
    assert mqtt_endpoint("mqtts://b.example") == ("b.example", 8883, True)
    assert mqtt_endpoint("mqtt://127.0.0.1:2000") == ("127.0.0.1", 2000, False)
    table = reference(SCHEMA)
    assert "`SCHOOLMON_MQTT_URL`" in table and "| `mqtt.password` |" in table


FLOATS = {"timing": {
    "wait": Key("float", 0.2, "Seconds.", minimum=0.001, maximum=60),
    "sweep": Key("float", 15.0, "Seconds.", minimum=0.1),
}}


@pytest.mark.parametrize("text", ["[timing]\nwait = nan\n", "[timing]\nwait = -nan\n",
                                  "[timing]\nsweep = inf\n", "[timing]\nsweep = +inf\n"])
def test_nan_and_infinity_are_refused_in_a_file(tmp_path, text):
    with pytest.raises(ConfigError) as exc:
        load(FLOATS, write(tmp_path, text), env={})
    assert "timing." in str(exc.value) and "finite" in str(exc.value)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e999"])
def test_nan_and_infinity_are_refused_from_the_environment(value):
    with pytest.raises(ConfigError) as exc:
        load(FLOATS, None, env={"SCHOOLMON_TIMING_SWEEP": value})
    assert "timing.sweep" in str(exc.value) and "SCHOOLMON_TIMING_SWEEP" in str(exc.value)


@pytest.mark.parametrize("url", [
    "mqtt://dev:hunter2-secret@broker:99999", "mqtt://dev:hunter2-secret@broker:port",
    "http://dev:hunter2-secret@broker", "mqtt://dev:hunter2-secret@[::1:1883",
    "mqtt://:hunter2-secret@", "ftp://dev:hunter2-secret@broker/x",
])
def test_an_invalid_url_never_shows_its_password(tmp_path, url):
    for source in ("file", "env"):
        with pytest.raises(ConfigError) as exc:
            if source == "file":
                load(SCHEMA, write(tmp_path, '[mqtt]\nurl = "%s"\n' % url), env={})
            else:
                load(SCHEMA, None, env={"SCHOOLMON_MQTT_URL": url})
        assert "mqtt.url" in str(exc.value)
        assert "hunter2" not in str(exc.value), str(exc.value)


def test_listen_refuses_non_ascii_digits():
    from schoolmon.protocol.settings import check_listen
    assert check_listen("127.0.0.1:8080") is None
    assert check_listen("127.0.0.1:²") and check_listen("127.0.0.1:８０")
