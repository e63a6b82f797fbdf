"""Answers to odd and wrong requests, through the real HTTP stack on a real SQLite store:
never a 500, always the documented error body, in the caller's language."""
import pytest

from tests.collector.api.apihelp import ADMIN, client


@pytest.mark.parametrize("area", ["9223372036854775808", "9223372036854775807",
                                  "1" * 40, "²", "٣", "１", "-1", "\x00", "a\x00b", " "])
def test_area_filter_never_fails(live, area):
    r = client(live).get("/api/v1/schools", params={"area": area})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [] and r.json()["total"] == 0


def test_area_filter_by_id_still_works(live):
    c = client(live)
    unit = c.get("/api/v1/org").json()["roots"][0]["children"][0]
    r = c.get("/api/v1/schools", params={"area": str(unit["id"])})
    assert r.status_code == 200 and r.json()["total"] == unit["counts"]["schools"] > 0


@pytest.mark.parametrize("path", ["/api/v1/schools/a\x00b", "/api/v1/devices/a\x00b",
                                  "/api/v1/devices/a\x00b/series?metric=cpu_pct"])
def test_nul_in_an_id_is_not_found(live, path):
    r = client(live).get(path.replace("\x00", "%00"))
    assert r.status_code == 404 and r.json()["error"].endswith("not_found")


@pytest.mark.parametrize("lang, words", [("vi", "Không tìm thấy"), ("en", "No such path")])
def test_unknown_paths_answer_in_the_callers_language(live, lang, words):
    for path in ("/api/v1/nothing", "/nothing"):
        r = client(live).get(path, params={"lang": lang})
        assert r.status_code == 404
        assert r.json() == {"error": "not_found", "message": r.json()["message"]}
        assert words in r.json()["message"]
    r = client(live, **{"Accept-Language": "en-GB,en;q=0.8"}).get("/api/v1/nothing")
    assert "No such path" in r.json()["message"]


def test_wrong_method_answers_in_vietnamese_by_default(live):
    r = client(live).delete("/api/v1/summary")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert "phương thức" in r.json()["message"] and "GET" in r.headers["allow"]


def test_validation_errors_in_the_callers_language(live):
    c = client(live)
    r = c.get("/api/v1/schools", params={"page": "two", "per_page": 9999})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid_request" and body["message"] == "Tham số không hợp lệ."
    problems = {tuple(e["loc"]): e for e in body["errors"]}
    assert problems[("query", "page")]["msg"] == "Phải là một số nguyên."
    assert problems[("query", "per_page")]["msg"] == "Giá trị quá lớn."
    assert not any("Input should" in e["msg"] for e in body["errors"])
    en = c.get("/api/v1/schools", params={"page": "two", "lang": "en"}).json()
    assert en["message"] == "Invalid parameters."
    assert en["errors"][0]["msg"] == "Input should be a valid integer"
    r = c.get("/api/v1/devices/d01a/series")  # metric missing
    assert r.status_code == 422 and r.json()["errors"][0]["msg"] == "Thiếu tham số bắt buộc."


def test_time_zone_is_checked_when_the_app_is_made(engine):
    from types import SimpleNamespace

    from schoolmon.collector.api import create_app
    cfg = SimpleNamespace(api=SimpleNamespace(admin_token=ADMIN, read_tokens=[]),
                          province=SimpleNamespace(timezone="Mars/Olympus"))
    with pytest.raises(KeyError):
        create_app(engine, cfg)


def test_unknown_and_repeated_query_parameters_are_refused(live):
    c = client(live)
    r = c.get("/api/v1/schools", params={"stauts": "offline"})  # a typo, not "every school"
    assert r.status_code == 422
    assert r.json()["errors"] == [{"loc": ["query", "stauts"], "type": "unknown_parameter",
                                   "msg": "Đường dẫn này không có tham số này."}]
    r = c.get("/api/v1/summary?lang=vi&lang=en")
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "duplicate"
    assert c.get("/api/v1/schools", params={"status": "offline", "lang": "en"}).status_code == 200
    # without a token the answer is 401, whatever the parameters
    assert client(live, token="").get("/api/v1/schools", params={"x": "1"}).status_code == 401
