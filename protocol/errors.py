"""The one error type of the wire format, with a machine-readable reason."""

#: Every reason a message can be refused for, with what it means (docs/protocol.md lists
#: them from here). The collector counts rejects by these names
#: (``schoolmon_rejected_total{reason=...}``); tests hold the code to this list.
REASON_MEANINGS = {
    "too_large": "payload over the size limit",
    "invalid_json": "not UTF-8 JSON, or JSON with NaN/Infinity",
    "not_object": "JSON, but not an object",
    "invalid_text": "a string or key that is not valid Unicode (an escaped lone surrogate "
                    "such as `\\ud800`) or that carries NUL (`\\u0000`)",
    "bad_topic": "not schoolmon/v1/{school}/{device}/{kind}, or bad ids",
    "unknown_kind": "a kind this side does not know",
    "unknown_version": "a topic version or payload `v` this side does not know",
    "missing_field": "a required field is absent",
    "wrong_type": "a field of the wrong JSON type",
    "non_finite": "NaN or Infinity smuggled in as a number",
    "out_of_range": "negative or absurd value",
    "topic_mismatch": "payload names another school/device than its topic",
    "unknown_school": "the school is not in the registry (collector)",
}
REASONS = tuple(REASON_MEANINGS)


class ProtocolError(ValueError):
    """A message that does not follow the wire format; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        super().__init__("%s: %s" % (reason, detail))
        self.reason = reason
        self.detail = detail
