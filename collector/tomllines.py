"""Where things are in a TOML file's text, so an error can name its line.

tomllib gives lines for syntax errors only; a value that parses but cannot be used (an
unknown key, a bad duration) is found again in the text: a top-level key, a key of a
``[section]``, or a key inside the N-th ``[[array]]`` entry (``[[rule]]``, ``[[check]]``).
Used by the files a Sở edits: the ATTT baseline and the alert rules.
"""
import re
from typing import Any, Callable, Collection, Dict, Optional

import tomllib


class TomlLines:
    def __init__(self, text: str, array: str) -> None:
        self.array = array
        self.lines = text.splitlines()
        #: the line of each ``[[array]]`` header, in order
        self.headers = [i + 1 for i, ln in enumerate(self.lines)
                        if re.match(r"^\s*\[\[\s*%s\s*\]\]" % re.escape(array), ln)]

    def _find(self, pattern: str, start: int = 1, stop: Optional[int] = None) -> Optional[int]:
        rx = re.compile(pattern)
        for n in range(start, (stop or len(self.lines)) + 1):
            if n - 1 < len(self.lines) and rx.search(self.lines[n - 1]):
                return n
        return None

    def key(self, key: str, section: Optional[str] = None) -> Optional[int]:
        """The line of a top-level ``key = ...`` (before the first array entry), or of
        ``key`` in ``[section]`` (the section's header when the key is not written)."""
        pattern = r"^\s*[\"']?%s[\"']?\s*=" % re.escape(key)
        if section:
            start = self._find(r"^\s*\[\s*%s\s*\]" % re.escape(section)) or 1
            return self._find(pattern, start) or start
        return self._find(pattern, 1, self.headers[0] - 1 if self.headers else None)

    def item(self, index: int, key: Optional[str] = None) -> Optional[int]:
        """The line of ``key`` (``key = ...`` or a sub-table ``[array.key ...]``) in the
        ``index``-th array entry, else that entry's ``id``, else its header."""
        if index >= len(self.headers):
            return None
        start = self.headers[index]
        stop = self.headers[index + 1] - 1 if index + 1 < len(self.headers) else None
        if key is not None:
            found = self._find(r"^\s*(%s\s*=|\[\s*%s\.%s\b)" % (
                re.escape(key), re.escape(self.array), re.escape(key)), start, stop)
            if found:
                return found
        return self._find(r"^\s*id\s*=", start, stop) or start


def load_versioned(text: str, lines: "TomlLines", top_keys: Collection[str],
                   fail: Callable[[Optional[int], str], Exception]) -> Dict[str, Any]:
    """Parse ``text``: a syntax error, a top-level key not in ``top_keys`` or a
    ``version`` other than 1 raises ``fail(line, reason)`` (reason in Vietnamese and
    English), so each file's own error class names the file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise fail(int(m.group(1)) if m else None,
                   "cú pháp TOML sai / TOML syntax error: %s" % exc) from None
    for k in data:
        if k not in top_keys:
            raise fail(lines.key(k), "khóa không biết / unknown key %r (biết / known: %s)"
                       % (k, ", ".join(sorted(top_keys))))
    if data.get("version", 1) != 1:
        raise fail(lines.key("version"), "version phải là 1 / must be 1")
    return data


__all__ = ["TomlLines", "load_versioned"]
