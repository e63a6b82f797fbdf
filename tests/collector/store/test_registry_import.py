"""Registry and ``schools import``: CSV/XLSX, Vietnamese headers, per-row report,
all-or-nothing, dry run; on SQLite and the real PostgreSQL."""
import openpyxl
import pytest
from schoolmon.collector.store import schema as db
from schoolmon.collector.store.registry import (
    add_school,
    descendant_units,
    normalize_level,
    school_tags,
    schools_under,
    slug,
)
from schoolmon.collector.store.schools_import import header_field, import_schools
from sqlalchemy import func, select

from ..storehelp import engine_for

HEADER_VI = ["Mã trường", "Tên trường", "Cấp học", "Xã/Phường", "Tỉnh", "Số học sinh",
             "Nhà mạng", "Loại kết nối", "Tốc độ tải xuống (Mbps)", "Tốc độ tải lên (Mbps)",
             "Địa chỉ", "Vĩ độ", "Kinh độ", "Người liên hệ", "Điện thoại", "Email"]
GOOD = [
    ["10000101", "Trường Mầm non Hoa Ban", "Mầm non", "Xã Bát Xát", "Lào Cai", "1.200",
     "VNPT", "fiber", "100", "20,5", "Thôn 1", "22.53", "103.89", "Nguyễn Văn A",
     "0912345678", "a@ex.edu.vn"],
    ["10000102", "Trường Tiểu học Kim Đồng", "Tiểu học", "Xã Bát Xát", "Lào Cai", "350",
     "Viettel", "4g", "", "", "", "", "", "", "", ""],
    ["10000103", "Trường PTDTBT TH&THCS Y Tý", "TH&THCS", "Xã Y Tý", "Lào Cai", "", "", "",
     "", "", "", "", "", "", "", ""],
    ["10000104", "Trường THPT số 1 Lào Cai", "THPT", "Phường Lào Cai", "Lào Cai", "1500",
     "", "", "", "", "", "", "", "", "", ""],
]


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    postgres = request.getfixturevalue("postgres") if request.param == "postgresql" else None
    for e in engine_for(request.param, tmp_path, postgres):
        db.create_all(e)
        yield e


def write_csv(path, rows, bom=True, delim=","):
    import csv
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        csv.writer(fh, delimiter=delim).writerows(rows)
    return str(path)


def write_xlsx(path, rows, title=None):
    wb = openpyxl.Workbook()
    ws = wb.active
    if title:
        ws.append([title])
    for r in rows:
        ws.append(r)
    wb.save(path)
    return str(path)


def n_schools(engine):
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(db.schools)).scalar()


def school(engine, code):
    with engine.connect() as c:
        r = c.execute(select(db.schools).where(db.schools.c.code == code)).first()
        return r._mapping if r else None


def test_levels_and_headers():
    assert normalize_level("Mầm non") == "MN" and normalize_level("mam non") == "MN"
    assert normalize_level("TIỂU HỌC") == "TH" and normalize_level("th") == "TH"
    assert normalize_level("Trung học cơ sở") == "THCS"
    assert normalize_level("Trung học phổ thông") == "THPT"
    assert normalize_level("GDNN-GDTX") == "GDNN-GDTX" and normalize_level("gdnn gdtx") == "GDNN-GDTX"
    assert normalize_level("Liên cấp") == "LIEN-CAP" and normalize_level("THCS&THPT") == "LIEN-CAP"
    assert normalize_level("Đại học") is None
    assert header_field("MÃ TRƯỜNG") == "code" and header_field("ma_truong") == "code"
    assert header_field("Huyện") == "area" and header_field("xã / phường") == "area"
    assert header_field("Số học sinh (*)") == "students"
    assert header_field("contracted_down_mbps") == "contracted_down_mbps"
    assert slug("Huyện Bát Xát") == "huyen-bat-xat" and slug("Đồng Văn") == "dong-van"


def test_import_csv_vietnamese_headers(engine, tmp_path):
    path = write_csv(tmp_path / "truong.csv", [HEADER_VI] + GOOD)
    rep = import_schools(engine, path)
    assert rep.ok and rep.written, rep.text()
    assert (rep.rows, rep.created, rep.updated) == (4, 4, 0)
    s = school(engine, "10000101")
    assert s["name"] == "Trường Mầm non Hoa Ban" and s["level"] == "MN"
    assert s["students"] == 1200 and s["contracted_up_mbps"] == 20.5
    assert s["lat"] == 22.53 and s["contact_email"] == "a@ex.edu.vn" and s["isp"] == "VNPT"
    assert school(engine, "10000103")["level"] == "LIEN-CAP"
    with engine.connect() as c:
        tags = school_tags(c)
        assert tags["10000101"] == ("lao-cai", "lao-cai/xa-bat-xat")
        units = {r.code: r for r in c.execute(select(db.org_units))}
        assert units["lao-cai"].level == "province" and units["lao-cai"].name == "Lào Cai"
        assert units["lao-cai/xa-y-ty"].parent_id == units["lao-cai"].id
        assert sorted(schools_under(c, [units["lao-cai/xa-bat-xat"].id])) == ["10000101",
                                                                               "10000102"]
        assert len(descendant_units(c, [units["lao-cai"].id])) == 4
    assert "Đã nhập 4 dòng" in rep.text() and "Imported 4 rows" in rep.text("en")


def test_import_xlsx_title_row_plain_headers_and_reimport(engine, tmp_path):
    header = ["MA TRUONG", "ten truong", "CAP HOC", "huyen", "tinh", "so hoc sinh", "Ghi chú"]
    rows = [header, [10000201, "THCS Sa Pa", "THCS", "Huyện Sa Pa", "Lào Cai", 640, "x"],
            [10000202.0, "TH Sa Pa", "TH", "Huyện Sa Pa", "Lào Cai", 420.0, None],
            [None, None, None, None, None, None, None]]
    path = write_xlsx(tmp_path / "truong.xlsx", rows, title="DANH SÁCH TRƯỜNG HỌC NĂM 2026")
    rep = import_schools(engine, path)
    assert rep.ok, rep.text()
    assert (rep.rows, rep.created) == (2, 2)
    assert [w.code for w in rep.warnings] == ["ignored_column"]
    assert school(engine, "10000201")["students"] == 640
    # Re-import: updates, no duplicates; a school moves to another area.
    rows[1] = [10000201, "THCS Sa Pa (mới)", "THCS", "Xã Tả Van", "Lào Cai", 700, None]
    path = write_xlsx(tmp_path / "truong2.xlsx", rows)
    rep = import_schools(engine, path)
    assert (rep.created, rep.updated) == (0, 2)
    assert n_schools(engine) == 2
    s = school(engine, "10000201")
    assert s["name"] == "THCS Sa Pa (mới)" and s["students"] == 700
    with engine.connect() as c:
        assert school_tags(c)["10000201"][1] == "lao-cai/xa-ta-van"


def test_english_headers_semicolon_no_bom(engine, tmp_path):
    rows = [["code", "name", "level", "area", "province", "contact_email"],
            ["20000001", "Trung tâm GDNN-GDTX Bắc Hà", "GDNN-GDTX", "Bắc Hà", "Lào Cai", ""]]
    rep = import_schools(engine, write_csv(tmp_path / "s.csv", rows, bom=False, delim=";"))
    assert rep.ok and school(engine, "20000001")["level"] == "GDNN-GDTX"


def test_area_from_first_non_empty_area_column(engine, tmp_path):
    rows = [["mã trường", "tên trường", "cấp học", "xã/phường", "huyện", "tỉnh"],
            ["30000001", "TH A", "TH", "Xã Mường Hum", "Huyện Bát Xát", "Lào Cai"],
            ["30000002", "TH B", "TH", "", "Huyện Bát Xát", "Lào Cai"]]
    assert import_schools(engine, write_csv(tmp_path / "s.csv", rows)).ok
    with engine.connect() as c:
        tags = school_tags(c)
    assert tags["30000001"][1] == "lao-cai/xa-muong-hum"
    assert tags["30000002"][1] == "lao-cai/huyen-bat-xat"


def _bad(engine, tmp_path, row_changes=None, header=None, extra_rows=()):
    rows = [list(r) for r in GOOD]
    for (i, col), v in (row_changes or {}).items():
        rows[i][HEADER_VI.index(col)] = v
    path = write_csv(tmp_path / "bad.csv", [header or HEADER_VI] + rows + list(extra_rows))
    rep = import_schools(engine, path)
    assert not rep.ok and not rep.written
    assert n_schools(engine) == 0  # all or nothing
    return rep


@pytest.mark.parametrize("change,row,column,code,vi,en", [
    ({(1, "Tên trường"): ""}, 3, "name", "empty", "bắt buộc nhưng để trống", "is empty"),
    ({(0, "Cấp học"): "Đại học"}, 2, "level", "unknown_level", "Cấp học “Đại học” không hợp lệ",
     "Unknown school level"),
    ({(2, "Mã trường"): "10000101"}, 4, "code", "duplicate_code", "trùng với dòng 2",
     "also on row 2"),
    ({(3, "Số học sinh"): "nhiều"}, 5, "students", "bad_number", "không phải là số",
     "is not a number"),
    ({(3, "Số học sinh"): "12.5"}, 5, "students", "not_integer", "phải là số nguyên",
     "whole number"),
    ({(0, "Tốc độ tải xuống (Mbps)"): "-5"}, 2, "contracted_down_mbps", "out_of_range",
     "nằm ngoài khoảng", "is outside"),
    ({(1, "Vĩ độ"): "122.5"}, 3, "lat", "out_of_range", "ngoài khoảng -90 – 90",
     "outside -90 – 90"),
    ({(1, "Kinh độ"): "abc"}, 3, "lon", "bad_number", "“abc”", "“abc”"),
    ({(0, "Email"): "a@b"}, 2, "contact_email", "bad_email", "không phải là địa chỉ email",
     "not a valid email"),
    ({(0, "Mã trường"): "10/001"}, 2, "code", "bad_code", "chỉ được gồm", "may only hold"),
])
def test_bad_cell_reported_by_row_and_column(engine, tmp_path, change, row, column, code, vi, en):
    rep = _bad(engine, tmp_path, change)
    assert [(p.row, p.column, p.code) for p in rep.errors] == [(row, column, code)]
    assert vi in rep.errors[0].message("vi") and en in rep.errors[0].message("en")
    text = rep.text()
    assert ("Dòng %d" % row) in text and "không ghi gì" in text
    assert ("Row %d" % row) in rep.text("en")
    d = rep.as_dict()
    assert d["ok"] is False and d["errors"][0]["row"] == row
    assert d["errors"][0]["message_en"] and d["errors"][0]["message_vi"]


def test_missing_required_column(engine, tmp_path):
    header = list(HEADER_VI)
    header[HEADER_VI.index("Tỉnh")] = "Ghi chú"
    rep = _bad(engine, tmp_path, header=header)
    assert [(p.row, p.column, p.code) for p in rep.errors] == [(1, "province", "missing_column")]
    assert "Thiếu cột bắt buộc “tỉnh”" in rep.errors[0].message()
    assert "Required column “province” is missing" in rep.errors[0].message("en")


def test_several_errors_all_reported_nothing_written(engine, tmp_path):
    rep = _bad(engine, tmp_path, {(0, "Cấp học"): "ABC", (3, "Email"): "x"},
               extra_rows=[["", "Trường không mã", "TH", "Xã A", "Lào Cai"]])
    assert sorted((p.row, p.code) for p in rep.errors) == [(2, "unknown_level"),
                                                          (5, "bad_email"), (6, "empty")]


def test_dry_run_writes_nothing(engine, tmp_path):
    add_school(engine, "10000101", "Cũ", "MN", "Xã Bát Xát", "Lào Cai")
    path = write_csv(tmp_path / "truong.csv", [HEADER_VI] + GOOD)
    rep = import_schools(engine, path, dry_run=True)
    assert rep.ok and not rep.written and (rep.created, rep.updated) == (3, 1)
    assert n_schools(engine) == 1 and school(engine, "10000101")["name"] == "Cũ"
    assert "--dry-run" in rep.text() and "would add 3" in rep.text("en")
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(db.org_units)).scalar() == 2


def test_unreadable_files(engine, tmp_path):
    p = tmp_path / "cp1258.csv"  # what an old Vietnamese Excel saves: not UTF-8
    p.write_bytes(b"M\xe3 tr\xdd\xf4\xd2ng,T\xean tr\xdd\xf4\xd2ng\n")
    with pytest.raises(ValueError, match="UTF-8"):
        import_schools(engine, str(p))
    p = tmp_path / "broken.xlsx"
    p.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="XLSX"):
        import_schools(engine, str(p))
    p = tmp_path / "empty.csv"
    p.write_text("mã trường,tên trường,cấp học,huyện,tỉnh\n", encoding="utf-8")
    rep = import_schools(engine, str(p))
    assert [e.code for e in rep.errors] == ["no_rows"]
    p.write_text("a,b\n1,2\n", encoding="utf-8")
    assert [e.code for e in import_schools(engine, str(p)).errors] == ["no_header"]
