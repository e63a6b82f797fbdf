"""``schoolmon-collector schools import FILE [--dry-run]``: CSV or XLSX of schools.

- CSV in UTF-8 (with or without BOM), separated by ``,``, ``;`` or tab; XLSX through
  openpyxl (first worksheet, cached values of formulas).
- Headers in Vietnamese or English, with or without diacritics, any case (``Mã trường``,
  ``ma truong``, ``code`` ...); a title row above the header is allowed (the header is the
  first of the first 10 rows that names at least three known columns).
- Levels as codes or names: ``MN``/``Mầm non``, ``TH``/``Tiểu học``, ``THCS``, ``THPT``,
  ``GDNN-GDTX``, ``Liên cấp`` (registry.normalize_level).
- All-or-nothing: one bad row and nothing is written. ``dry_run`` checks and counts only.
- The report names each problem by row (as the spreadsheet numbers it, header = its own
  row), column and what is wrong, in Vietnamese (``lang="vi"``, default) or English.
"""
import csv
import io
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

from schoolmon.protocol.topics import valid_id
from sqlalchemy import Engine, inspect, select

from ..text import IMPORT_COLUMN_LABELS, IMPORT_MESSAGES, label
from .registry import LEVELS, ensure_area, fold, normalize_level, upsert_schools
from .schema import schools

REQUIRED = ("code", "name", "level", "area", "province")
OPTIONAL = ("students", "isp", "link_type", "contracted_down_mbps", "contracted_up_mbps",
            "address", "lat", "lon", "contact_name", "contact_phone", "contact_email")
FIELDS = REQUIRED + OPTIONAL

_ALIASES: Dict[str, Tuple[str, ...]] = {
    "code": ("code", "school code", "ma truong", "ma", "ma so", "ma csdl", "ma truong csdl",
             "ma moet", "moet code", "moet", "ma don vi"),
    "name": ("name", "school name", "school", "ten truong", "ten", "ten don vi", "truong"),
    "level": ("level", "school level", "cap hoc", "cap", "bac hoc", "loai hinh", "cap truong"),
    "area": ("area", "xa/phuong", "xa phuong", "xa / phuong", "phuong/xa", "xa", "phuong",
             "huyen", "quan/huyen", "quan huyen", "huyen/thi xa/thanh pho", "district",
             "commune", "cum", "cum truong", "khu vuc", "dia ban", "don vi hanh chinh"),
    "province": ("province", "tinh", "tinh/thanh pho", "tinh/tp", "tinh thanh", "thanh pho",
                 "tinh/thanh"),
    "students": ("students", "student count", "number of students", "so hoc sinh", "hoc sinh",
                 "so hs", "tong so hoc sinh", "si so"),
    "isp": ("isp", "nha mang", "nha cung cap", "nha cung cap internet", "nha cung cap dich vu",
            "nha mang internet", "internet provider"),
    "link_type": ("link type", "loai ket noi", "ket noi", "loai duong truyen", "duong truyen",
                  "hinh thuc ket noi", "connection type"),
    "contracted_down_mbps": ("contracted down mbps", "contracted down", "download mbps",
                             "toc do tai xuong", "tai xuong", "bang thong tai xuong",
                             "toc do tai xuong hop dong", "bang thong xuong", "toc do xuong"),
    "contracted_up_mbps": ("contracted up mbps", "contracted up", "upload mbps",
                           "toc do tai len", "tai len", "bang thong tai len",
                           "toc do tai len hop dong", "bang thong len", "toc do len"),
    "address": ("address", "dia chi", "dia chi truong"),
    "lat": ("lat", "latitude", "vi do"),
    "lon": ("lon", "lng", "long", "longitude", "kinh do"),
    "contact_name": ("contact name", "contact", "nguoi lien he", "lien he", "can bo phu trach",
                     "nguoi phu trach", "can bo it", "ho ten nguoi lien he"),
    "contact_phone": ("contact phone", "phone", "dien thoai", "so dien thoai", "sdt", "dt",
                      "dien thoai lien he"),
    "contact_email": ("contact email", "email", "e-mail", "e mail", "thu dien tu",
                      "email lien he"),
}

_MAX_LEN = {"code": 64, "name": 255, "area": 128, "province": 128, "isp": 64, "link_type": 32,
            "address": 512, "contact_name": 255, "contact_phone": 64, "contact_email": 255}
_RANGES = {"students": (0, 100_000), "contracted_down_mbps": (0, 100_000),
           "contracted_up_mbps": (0, 100_000), "lat": (-90, 90), "lon": (-180, 180)}
_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]{2,}$")

def _say(code: str, lang: str) -> str:
    return label(IMPORT_MESSAGES, code, lang) or code


@dataclass
class RowProblem:
    row: int  # spreadsheet row number (1 = first row of the file)
    column: Optional[str]  # field name (see FIELDS), None for the whole file
    code: str  # key of text.IMPORT_MESSAGES
    value: Any = None
    extra: Dict[str, Any] = field(default_factory=dict)
    header: Optional[str] = None  # the column's header as written in the file

    def column_label(self, lang: str) -> str:
        return self.header or (label(IMPORT_COLUMN_LABELS, self.column, lang) or ""
                               if self.column else "")

    def message(self, lang: str = "vi") -> str:
        return _say(self.code, lang).format(
            col=self.column_label(lang), value="" if self.value is None else self.value,
            levels=", ".join(("MN", "TH", "THCS", "THPT", "GDNN-GDTX", "Liên cấp")),
            **self.extra)

    def as_dict(self, lang: str = "vi") -> Dict[str, Any]:
        return {"row": self.row, "column": self.column, "header": self.header,
                "code": self.code, "value": self.value, "message": self.message(lang),
                "message_en": self.message("en"), "message_vi": self.message("vi")}


@dataclass
class ImportReport:
    path: str
    dry_run: bool
    rows: int = 0  # data rows read (blank rows skipped)
    created: int = 0  # schools new to the registry (would be, on a dry run)
    updated: int = 0  # schools already there, updated (would be, on a dry run)
    errors: List[RowProblem] = field(default_factory=list)
    warnings: List[RowProblem] = field(default_factory=list)
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def messages(self, lang: str = "vi") -> List[str]:
        """One line per problem: ``Dòng 5, cột “số học sinh”: ...`` (or English)."""
        out = []
        for p in self.errors + self.warnings:
            prefix = _say("row", lang) % p.row
            if p.column and "{col}" not in IMPORT_MESSAGES[p.code]["vi"]:
                prefix += _say("row_column", lang) % p.column_label(lang)
            out.append("%s: %s" % (prefix, p.message(lang)))
        return out

    def text(self, lang: str = "vi") -> str:
        lines = self.messages(lang)
        if self.errors:
            lines.append(_say("summary_errors", lang) % len(self.errors))
        else:
            key = "summary_dry_run" if self.dry_run else "summary_written"
            lines.append(_say(key, lang)
                         % (self.rows, self.created, self.updated))
        return "\n".join(lines)

    def as_dict(self, lang: str = "vi") -> Dict[str, Any]:
        return {"ok": self.ok, "dry_run": self.dry_run, "rows": self.rows,
                "created": self.created, "updated": self.updated, "written": self.written,
                "errors": [p.as_dict(lang) for p in self.errors],
                "warnings": [p.as_dict(lang) for p in self.warnings]}


def _norm_header(text: Any) -> str:
    s = fold(str(text or ""))
    s = re.sub(r"[_\-]+", " ", s)
    s = re.sub(r"[*:.#]+", "", s)
    return " ".join(s.split())


_HEADER_MAP: Dict[str, str] = {}
for _f, _names in _ALIASES.items():
    for _n in _names + (_f,):
        _HEADER_MAP[_norm_header(_n)] = _f


def header_field(text: Any) -> Optional[str]:
    """The field a header names (``"Số học sinh"`` → ``"students"``), or None."""
    key = _norm_header(text)
    if not key:
        return None
    hit = _HEADER_MAP.get(key)
    if hit is None:
        bare = " ".join(re.sub(r"\(.*?\)", " ", key).split())  # "(Mbps)", "(*)"
        hit = _HEADER_MAP.get(bare)
        if hit is None and bare.endswith(" mbps"):
            hit = _HEADER_MAP.get(bare[:-5])
    return hit


# --- reading files ------------------------------------------------------------------------

def read_rows(path: str) -> List[Tuple[int, List[Any]]]:
    """(row number, cells) for every row of the first sheet / the CSV file."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    ext = os.path.splitext(path)[1].lower()
    if head.startswith(b"PK") or ext in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    if ext == ".xls":
        raise ValueError("old Excel .xls files are not supported: save as .xlsx or CSV UTF-8 "
                         "(tệp .xls cũ không được hỗ trợ: hãy lưu thành .xlsx hoặc CSV UTF-8)")
    return _read_csv(path)


def _read_xlsx(path: str) -> List[Tuple[int, List[Any]]]:
    import openpyxl
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile.BadZipFile, KeyError, InvalidFileException ...
        raise ValueError("not a readable XLSX file (không đọc được tệp XLSX): %s" % exc) from None
    try:
        ws = wb.worksheets[0]
        return [(i, list(r)) for i, r in enumerate(ws.iter_rows(values_only=True), start=1)]
    finally:
        wb.close()


def _read_csv(path: str) -> List[Tuple[int, List[Any]]]:
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("the CSV file is not UTF-8: in Excel use “CSV UTF-8 (Comma "
                         "delimited)” (tệp CSV không phải UTF-8: trong Excel hãy chọn "
                         "“CSV UTF-8”)") from None
    first = text.split("\n", 1)[0]
    delim = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
    return [(i, row) for i, row in enumerate(reader, start=1)]


# --- checking values ----------------------------------------------------------------------

def _cell_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _number(v: Any, integer: bool) -> Tuple[Optional[float], Optional[str]]:
    """(value, problem code)."""
    if isinstance(v, bool):
        return None, "bad_number"
    if isinstance(v, (int, float)):
        x = float(v)
    else:
        s = str(v).strip().replace("\u00a0", "").replace(" ", "")
        if integer and re.fullmatch(r"\d{1,3}([.,]\d{3})+", s):
            s = re.sub(r"[.,]", "", s)  # 1.200 / 1,200 = 1200 students
        elif s.count(",") == 1 and "." not in s:
            s = s.replace(",", ".")  # Vietnamese decimal comma: 20,5
        try:
            x = float(s)
        except ValueError:
            return None, "bad_number"
    if not math.isfinite(x):
        return None, "bad_number"
    if integer and not x.is_integer():
        return None, "not_integer"
    return (int(x) if integer else x), None


def check_rows(rows: Sequence[Tuple[int, List[Any]]], report: ImportReport
               ) -> List[Dict[str, Any]]:
    """Validate every row; fill ``report.errors``/``warnings``; the good rows as dicts."""
    header_at = None
    for idx, (_n, cells) in enumerate(rows[:10]):
        if len({header_field(c) for c in cells} - {None}) >= 3:
            header_at = idx
            break
    if header_at is None:
        report.errors.append(RowProblem(rows[0][0] if rows else 1, None, "no_header"))
        return []
    hrow, headers = rows[header_at]
    columns: Dict[str, List[int]] = {}
    for i, h in enumerate(headers):
        f = header_field(h)
        if f is None:
            if _cell_text(h):
                report.warnings.append(RowProblem(hrow, None, "ignored_column", _cell_text(h)))
            continue
        columns.setdefault(f, []).append(i)
    for f, idxs in columns.items():
        if len(idxs) > 1 and f != "area":  # several area columns: the first non-empty wins
            report.errors.append(RowProblem(hrow, f, "duplicate_column",
                                            ", ".join(_cell_text(headers[i]) for i in idxs)))
    for f in REQUIRED:
        if f not in columns:
            report.errors.append(RowProblem(hrow, f, "missing_column"))
    if report.errors:
        return []
    header_text = {f: _cell_text(headers[idxs[0]]) for f, idxs in columns.items()}
    out: List[Dict[str, Any]] = []
    first_row: Dict[str, int] = {}
    for n, cells in rows[header_at + 1:]:
        if not any(_cell_text(c) for c in cells):
            continue
        report.rows += 1

        def cell(f: str, cells: List[Any] = cells) -> Any:
            for i in columns.get(f, ()):
                if i < len(cells) and _cell_text(cells[i]):
                    return cells[i]
            return None

        def problem(f: str, code: str, value: Any = None, n: int = n, **extra: Any) -> None:
            report.errors.append(RowProblem(n, f, code, value, extra, header_text.get(f)))

        rec: Dict[str, Any] = {}
        bad = False
        for f in FIELDS:
            v = cell(f)
            text = _cell_text(v)
            if not text:
                if f in REQUIRED:
                    problem(f, "empty")
                    bad = True
                rec[f] = None
                continue
            if f in _RANGES:
                x, code = _number(v, integer=(f == "students"))
                if code:
                    problem(f, code, text)
                    bad = True
                    continue
                lo, hi = _RANGES[f]
                if not lo <= x <= hi:  # type: ignore[operator]
                    problem(f, "out_of_range", text, lo=lo, hi=hi)
                    bad = True
                    continue
                rec[f] = x
                continue
            if f in _MAX_LEN and len(text) > _MAX_LEN[f]:
                problem(f, "too_long", text[:40] + "…", max=_MAX_LEN[f])
                bad = True
                continue
            rec[f] = text
        if rec.get("code"):
            code = rec["code"]
            if not valid_id(code):
                problem("code", "bad_code", code)
                bad = True
            elif code in first_row:
                problem("code", "duplicate_code", code, first=first_row[code])
                bad = True
            else:
                first_row[code] = n
        if rec.get("level"):
            level = normalize_level(rec["level"])
            if level is None:
                problem("level", "unknown_level", rec["level"])
                bad = True
            rec["level"] = level
        if rec.get("contact_email") and not _EMAIL.match(rec["contact_email"]):
            problem("contact_email", "bad_email", rec["contact_email"])
            bad = True
        if not bad:
            rec["_row"] = n
            out.append(rec)
    if report.rows == 0:
        report.errors.append(RowProblem(hrow, None, "no_rows"))
    return out


def import_schools(engine: Optional[Engine], path: str, dry_run: bool = False) -> ImportReport:
    """Check the whole file, then (unless ``dry_run`` or any error) upsert every school in
    one transaction, creating provinces and areas as needed. Raises ValueError when the
    file cannot be read at all (wrong format, not UTF-8). A dry run writes nothing; its
    ``engine`` may be None (no database yet: every school would be created)."""
    report = ImportReport(path=path, dry_run=dry_run)
    rows = read_rows(path)
    good = check_rows(rows, report)
    if report.errors:
        return report
    codes = [r["code"] for r in good]
    existing: Set[str] = set()
    if engine is not None:
        with engine.connect() as conn:
            if inspect(conn).has_table("schools"):  # a dry run against a new database
                for i in range(0, len(codes), 500):
                    existing.update(conn.execute(
                        select(schools.c.code).where(schools.c.code.in_(codes[i:i + 500])))
                        .scalars())
    report.updated = sum(1 for c in codes if c in existing)
    report.created = len(codes) - report.updated
    if dry_run:
        return report
    if engine is None:
        raise ValueError("a database is needed to import (only a dry run goes without)")
    with engine.begin() as conn:
        units: Dict[Tuple[str, str], int] = {}
        recs = []
        for r in good:
            key = (r["province"], r["area"])
            if key not in units:
                units[key] = ensure_area(conn, r["province"], r["area"])
            rec = {k: r[k] for k in FIELDS if k not in ("area", "province")}
            rec["org_unit_id"] = units[key]
            recs.append(rec)
        upsert_schools(conn, recs)
    report.written = True
    return report


__all__ = ["ImportReport", "RowProblem", "import_schools", "check_rows", "read_rows",
           "header_field", "FIELDS", "REQUIRED", "OPTIONAL", "LEVELS"]
