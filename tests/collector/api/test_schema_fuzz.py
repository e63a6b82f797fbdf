"""The API against its own OpenAPI document: schemathesis generates requests from
``/openapi.json`` (valid and invalid ones, a few hundred per route, fixed seed) and sends
them over real HTTP to a real collector app on a real SQLite store with data; every
answer must be documented (status, content type, body schema), invalid requests refused,
valid ones accepted and nothing answers 500. So spec and API cannot drift apart."""
import pytest
import schemathesis
import schemathesis.specs.openapi.checks  # noqa: F401 - registers the OpenAPI checks
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS
from schoolmon.collector.api import create_app
from schoolmon.collector.api.server import ApiServer
from schoolmon.collector.store import schema as db

from tests.collector.api.apihelp import ADMIN, _cfg, seed
from tests.servers import free_port

AUTH = {"Authorization": "Bearer " + ADMIN}
#: Path parameters naming objects the seeded store has (generated ones are mostly unknown).
EXISTING = {"code": "S01", "device_id": "d01a"}
CASES_PER_ROUTE = 200


@pytest.fixture(scope="module")
def api_url(tmp_path_factory):
    engine = db.make_engine("sqlite:///%s" % (tmp_path_factory.mktemp("fuzz") / "state.db"))
    server = ApiServer(create_app(seed(engine), _cfg()), "127.0.0.1", free_port()).start()
    yield server.url
    server.stop()
    engine.dispose()


@pytest.fixture(scope="module")
def api_schema(api_url):
    return schemathesis.openapi.from_url(api_url + "/openapi.json")


def _only_cross_field_400(ctx, response, case):
    """The one refusal OpenAPI cannot describe: ``from`` not before ``to``, or a range over
    400 days (two parameters, each valid alone). Any other 400 of a series is a failure."""
    if response.status_code == 400:
        assert response.json()["error"] in ("bad_range", "range_too_long", "bad_time"), response.text
        if response.json()["error"] == "bad_time":  # 29 February of a common year only
            times = [case.query.get(k) or "" for k in ("from", "to")]
            assert any("-02-29" in t for t in times), response.text


def _operations():
    """(method, path) of every documented operation (the document needs no data)."""
    engine = db.make_engine("sqlite://")
    doc = create_app(engine, _cfg()).openapi()
    engine.dispose()
    return sorted((m.upper(), p) for p, ops in doc["paths"].items() for m in ops)


@pytest.mark.parametrize("method, path", _operations())
def test_api_answers_as_its_schema_says(api_url, api_schema, method, path):
    operation = api_schema[path][method]
    checks = list(CHECKS.get_all())
    extra = []
    if path.endswith(("/series", "/audit")):  # both read from/to
        checks = [c for c in checks if c.__name__ != "positive_data_acceptance"]
        extra = [_only_cross_field_400]
    if (method, path) == ("POST", "/api/v1/users"):
        # role and units go together (a scoped role needs units, the others take none) and
        # units must exist: rules across fields and data, 400/404 as documented
        checks = [c for c in checks if c.__name__ != "positive_data_acceptance"]
    if (method, path) == ("POST", "/api/v1/silences"):
        # at least one matcher, an end after the start and not past, 90 days at most, the
        # school or device must exist: rules across fields and data, 404/422 as documented
        checks = [c for c in checks if c.__name__ != "positive_data_acceptance"]
    if path.endswith(("/ack", "/unack")) or (method, path) == (
            "DELETE", "/api/v1/silences/{silence_id}"):
        # the alert or silence must exist and be in a state that allows it: 404/409
        checks = [c for c in checks if c.__name__ != "positive_data_acceptance"]
    if path.endswith("/revoke"):  # 501 "not available yet" is the documented answer
        checks = [c for c in checks if c.__name__ != "not_a_server_error"]
    if path.endswith("/speedtest"):  # an app without a scheduler: 503, documented
        checks = [c for c in checks if c.__name__ != "not_a_server_error"]

    # valid requests, invalid ones, and valid ones about objects that exist
    strategies = [operation.as_strategy(GenerationMode.POSITIVE),
                  operation.as_strategy(GenerationMode.NEGATIVE)]
    known = {k: v for k, v in EXISTING.items() if "{%s}" % k in path}
    if known:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE,
                                                path_parameters=known))

    negative = [c for c in checks if c.__name__ == "negative_data_rejection"]
    checks = [c for c in checks if c not in negative]

    @settings(max_examples=CASES_PER_ROUTE, derandomize=True, deadline=None,
              suppress_health_check=list(HealthCheck), database=None)
    @given(case=st.one_of(strategies))
    def one(case):
        response = case.call(base_url=api_url, headers=AUTH)
        case.validate_response(response, checks=checks, additional_checks=extra,
                               headers=AUTH)
        try:
            case.validate_response(response, checks=negative, headers=AUTH)
        except BaseExceptionGroup:  # noqa: F821 - a builtin since Python 3.11
            # A one-item list or a key without a value is "invalid" to the generator but
            # goes out on the wire exactly like a valid query: only a query that really
            # differs (a repeated or unknown key, a wrong value) must be refused.
            if _sent_query_is_plain(response.request.url, case):
                return
            raise

    one()


def _sent_query_is_plain(url, case):
    """True when the query as sent is valid by the schema: each key once, only keys the
    operation documents, each value (the string the server sees, read as the number or
    boolean the schema asks for) valid. The generator's "invalid" query then differed
    only before serialization (a one-item list, an object, a number for a string)."""
    from urllib.parse import parse_qsl, urlsplit

    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    keys = [k for k, _v in pairs]
    params = {p.name: p.definition.get("schema", {}) for p in case.operation.query}
    if len(keys) != len(set(keys)) or not set(keys) <= set(params):
        return False
    for key, text in pairs:
        schema = params[key]
        if not any(_valid(option, text)
                   for option in schema.get("anyOf", [schema])):
            return False
    return True


def _valid(schema, text):
    """``text`` as the server reads it against one parameter schema of this API (the
    keywords FastAPI writes for query parameters)."""
    import re
    kind = schema.get("type")
    if kind == "null":
        return False
    if kind == "boolean":
        return text in ("true", "false")
    if kind in ("integer", "number"):
        try:
            value = int(text) if kind == "integer" else float(text)
        except ValueError:
            return False
        return (schema.get("minimum", value) <= value <= schema.get("maximum", value)
                and schema.get("exclusiveMinimum", value - 1) < value
                and value < schema.get("exclusiveMaximum", value + 1))
    if "enum" in schema and text not in schema["enum"]:
        return False
    if len(text) > schema.get("maxLength", len(text)) or \
            len(text) < schema.get("minLength", 0):
        return False
    return "pattern" not in schema or re.search(schema["pattern"], text) is not None
