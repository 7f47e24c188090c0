"""Date and text functions: argument checks without a JVM, then every function on real rows through
one Dagster run writing one Iceberg table per case."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from flare_assets.settings import Settings
from flare_assets.spec.functions import Function
from flare_assets.spec.functions.dates import group_indexes
from flare_assets_tests.functions_harness import load_problems, run_cases

FUNCTIONS = TypeAdapter(list[Function])
DOCS_RULE = (
    r"【(?<year>\d{4})\W{1}(?<month>\d{1,2})\W{1}(?<day>\d{1,2})[^\d]? \W*(?:at )?(?<hour>\d{1,2}):"
    r"(?<minute>\d{1,2})(?::(?<second>\d{1,2}))?(?:[.,](?<ns>\d{1,9}))?(?<zero>z)?】"
)


def one(function: dict[str, Any]) -> Any:
    (model,) = FUNCTIONS.validate_python([function])
    return model


def values(column: str, *items: str | None) -> str:
    rows = ", ".join("(NULL)" if v is None else f"('{v}')" for v in items)
    return f"SELECT * FROM VALUES {rows} AS t({column})"


# ---- argument checks (no JVM) ----


@pytest.mark.unit
def test_any_date_takes_rule_or_rules_and_strips_the_docs_brackets() -> None:
    by_rule = one({"name": "any_date", "column": "d", "rule": [DOCS_RULE]})
    by_rules = one({"name": "any_date", "column": "d", "rules": DOCS_RULE})
    assert by_rule.rules == by_rules.rules
    assert by_rule.rules[0].startswith("(?<year>") and not by_rule.rules[0].endswith("】")
    assert by_rule.columns_after(["d"]) == ["d"]
    assert one({"name": "any_date", "column": "d", "asColumn": "e"}).columns_after(["d"]) == ["d", "e"]


@pytest.mark.unit
def test_group_numbers_follow_java() -> None:
    groups = group_indexes(r"(\d+)[(](?:x)(?<year>\d{4})\((?<month>\d\d)\Q(\E(?<day>\d\d)")
    assert groups == {"year": 2, "month": 3, "day": 4}


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (
            {"name": "any_date", "column": "d", "rules": [r"(?<year>\d{4})-(?<month>\d\d)"]},
            "no named group day",
        ),
        ({"name": "any_date", "column": "d", "rules": ["(?<year>[0-9"]}, "not a regular expression"),
        ({"name": "any_timestamp", "column": "d", "timezone": "Mars/Olympus"}, "not a time zone"),
        ({"name": "format_date", "column": "d", "format": "YYYY-ww"}, "pattern letters Y, w"),
        ({"name": "format_unix_date", "column": "d", "format": "yyyy", "extra": 1}, "Extra inputs"),
        ({"name": "diff_date", "columnA": "a", "columnB": "b"}, "asColumn"),
    ],
)
def test_bad_date_arguments_are_refused(function: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        one(function)


@pytest.mark.unit
def test_date_arguments_that_are_accepted() -> None:
    assert one({"name": "format_date", "column": "d", "refformat": "yyyy/MM/dd'T' HH:mm:ss"}).format
    assert one({"name": "any_timestamp", "column": "d", "timezone": "+05:30"}).timezone == "+05:30"
    assert one({"name": "any_timestamp", "column": "d", "timezone": "IST"}).timezone == "IST"
    split = one({"name": "split_url", "column": "URL"})
    assert split.columns_after(["URL"])[1:] == [
        f"URL_{p}" for p in ("protocol", "authority", "host", "port", "path", "filename", "query")
    ]
    assert one({"name": "split_email", "column": "e"}).columns_after(["e"]) == ["e", "e_account", "e_domain"]


@pytest.mark.unit
def test_missing_columns_are_named_at_load(tmp_path: Path) -> None:
    diff = {"name": "diff_date", "columnA": "a", "columnB": "nope", "asColumn": "days"}
    problems = load_problems(tmp_path, "SELECT '2020-01-01' AS a", [diff])
    assert any("functions[0]" in p and "no column 'nope'" in p for p in problems), problems


# ---- data (one Dagster run for the module) ----

LAYOUTS = {
    "2020-03-01T05:07:38Z": date(2020, 3, 1),
    "2020/03/01": date(2020, 3, 1),
    "2020.3.1": date(2020, 3, 1),
    "01-03-2020": date(2020, 3, 1),
    "01/03/2020": date(2020, 3, 1),
    "1.3.2020": date(2020, 3, 1),
    "03/25/2020": date(2020, 3, 25),
    "01/03/20": date(2020, 3, 1),
    "20200301": date(2020, 3, 1),
    "01 Mar 2020": date(2020, 3, 1),
    "1-March-2020": date(2020, 3, 1),
    "Mar 01, 2020": date(2020, 3, 1),
    "2020-Mar-01": date(2020, 3, 1),
    "Sun, 01 Mar 2020 05:07:38 GMT": date(2020, 3, 1),
    "2020-02-30": None,
    "hello": None,
}
DOCS_YEARS = ("2020-03-01T05:07:38Z", "2021-03-07T05:07:38Z")
CASES = {
    "any_date_docs": (
        values("END_YEAR", *DOCS_YEARS),
        [{"name": "any_date", "column": "END_YEAR", "asColumn": "year_end"}],
    ),
    "any_date_layouts": (values("s", *LAYOUTS), [{"name": "any_date", "column": "s", "asColumn": "d"}]),
    "any_date_rules": (
        values("s", "2020-03-01T05:07:38Z", "d=01 m=03 y=2020", "nothing"),
        [{"name": "any_date", "column": "s", "rules": [r"d=(?<day>\d+) m=(?<month>\d+) y=(?<year>\d+)"]}],
    ),
    "any_timestamp_docs": (
        values("END_YEAR", *DOCS_YEARS),
        [
            {
                "name": "any_timestamp",
                "column": "END_YEAR",
                "asColumn": "asia",
                "timezone": "Asia/Kolkata",
                "rules": [DOCS_RULE],
            },
            {
                "name": "any_timestamp",
                "column": "END_YEAR",
                "asColumn": "america",
                "timezone": "America/New_York",
            },
            {"name": "any_timestamp", "column": "END_YEAR", "asColumn": "utc"},
        ],
    ),
    "any_timestamp_layouts": (
        values("s", "2020-03-01 05:07:38.25+05:30", "01/03/2020 11:07 pm", "2020-03-01 25:00", None),
        [{"name": "any_timestamp", "column": "s", "asColumn": "t"}],
    ),
    "diff_date_docs": (
        "SELECT * FROM VALUES ('2019-02-24T05:07:38Z', '2020-03-01T05:07:38Z'),"
        " ('2020-03-01T05:07:38Z', '2021-03-07T05:07:38Z') AS t(START_YEAR, END_YEAR)",
        [{"name": "diff_date", "columnA": "END_YEAR", "columnB": "START_YEAR", "asColumn": "Days_Stayed"}],
    ),
    "epoch_to_timestamp_docs": (
        "SELECT * FROM VALUES (1709541360L, '1709541360.5'), (NULL, 'x') AS t(epochs, text)",
        [
            {"name": "epoch_to_timestamp", "column": "epochs", "asColumn": "timestamp"},
            {"name": "epoch_to_timestamp", "column": "text"},
        ],
    ),
    "format_date_docs": (
        values("START_YEAR", "2019-02-24T05:07:38Z", "2020-03-01T05:07:38Z"),
        [{"name": "format_date", "column": "START_YEAR", "refformat": "yyyy/MM/dd'T' HH:mm:ss"}],
    ),
    "format_unix_date_docs": (
        "SELECT * FROM VALUES (178976646), (NULL) AS t(epoch_column)",
        [{"name": "format_unix_date", "column": "epoch_column", "format": "yyyy-MM-dd'T'HH:mm:ss"}],
    ),
    "split_email_docs": (
        values("Email", "iamgroot@gmail.com", "not-an-address", "@example.org"),
        [{"name": "split_email", "column": "Email"}],
    ),
    "split_url_docs": (
        values(
            "URL",
            "www.spiderman.com",
            "https://user@shop.example.com:8443/a/b/page.html?q=1&r=2#top",
            "http://x.org/dir/",
        ),
        [{"name": "split_url", "column": "URL"}],
    ),
    "parse_html": (
        values(
            "html",
            "<html><head><style>p {color: red}</style></head><body><p>Caf&eacute; &amp; <b>bar</b>&nbsp;&lt;3"
            " &#233;t&#xE9;</p><script>var a = 1 < 2;</script><div>next</div><!-- note --></body></html>",
        ),
        [{"name": "parse_html", "column": "html", "asColumn": "text"}],
    ),
}


@pytest.fixture(scope="module")
def rows(settings: Settings, flare_home: Path) -> dict[str, list[dict]]:
    return run_cases(settings, flare_home / "pipelines", CASES, name="dates_and_text")


def test_any_date_docs_example(rows: dict[str, list[dict]]) -> None:
    assert sorted((r["END_YEAR"], r["year_end"]) for r in rows["any_date_docs"]) == [
        ("2020-03-01T05:07:38Z", date(2020, 3, 1)),
        ("2021-03-07T05:07:38Z", date(2021, 3, 7)),
    ]


def test_any_date_reads_the_common_layouts(rows: dict[str, list[dict]]) -> None:
    assert {r["s"]: r["d"] for r in rows["any_date_layouts"]} == LAYOUTS


def test_any_date_rules_come_first_then_the_default_layouts(rows: dict[str, list[dict]]) -> None:
    got = sorted((r["s"] for r in rows["any_date_rules"]), key=lambda d: (d is None, d))
    assert got == [date(2020, 3, 1), date(2020, 3, 1), None]


def test_any_timestamp_docs_example(rows: dict[str, list[dict]]) -> None:
    got = sorted(rows["any_timestamp_docs"], key=lambda r: r["END_YEAR"])
    assert [(r["asia"], r["america"], r["utc"]) for r in got] == [
        (utc(2020, 3, 1, 10, 37, 38), utc(2020, 3, 1, 0, 7, 38), utc(2020, 3, 1, 5, 7, 38)),
        (utc(2021, 3, 7, 10, 37, 38), utc(2021, 3, 7, 0, 7, 38), utc(2021, 3, 7, 5, 7, 38)),
    ]


def test_any_timestamp_offsets_am_pm_and_bad_values(rows: dict[str, list[dict]]) -> None:
    got = {r["s"]: r["t"] for r in rows["any_timestamp_layouts"]}
    assert got == {
        "2020-03-01 05:07:38.25+05:30": utc(2020, 2, 29, 23, 37, 38, 250000),
        "01/03/2020 11:07 pm": utc(2020, 3, 1, 23, 7),
        "2020-03-01 25:00": None,
        None: None,
    }


def test_diff_date_docs_example(rows: dict[str, list[dict]]) -> None:
    assert [r["Days_Stayed"] for r in rows["diff_date_docs"]] == [371, 371]


def test_epoch_to_timestamp_docs_example(rows: dict[str, list[dict]]) -> None:
    got = sorted(rows["epoch_to_timestamp_docs"], key=lambda r: r["epochs"] or 0)
    assert [(r["timestamp"], r["text"]) for r in got] == [
        (None, None),
        (utc(2024, 3, 4, 8, 36), utc(2024, 3, 4, 8, 36, 0, 500000)),
    ]


def test_format_date_docs_example(rows: dict[str, list[dict]]) -> None:
    assert sorted(r["START_YEAR"] for r in rows["format_date_docs"]) == [
        "2019/02/24T 05:07:38",
        "2020/03/01T 05:07:38",
    ]


def test_format_unix_date_docs_example(rows: dict[str, list[dict]]) -> None:
    assert sorted(rows["format_unix_date_docs"], key=lambda r: str(r["epoch_column"])) == [
        {"epoch_column": "1975-09-03T11:44:06"},
        {"epoch_column": None},
    ]


def test_split_email_docs_example(rows: dict[str, list[dict]]) -> None:
    got = {r["Email"]: (r["Email_account"], r["Email_domain"]) for r in rows["split_email_docs"]}
    assert got == {
        "iamgroot@gmail.com": ("iamgroot", "gmail.com"),
        "not-an-address": (None, None),
        "@example.org": (None, "example.org"),
    }


def test_split_url_docs_example(rows: dict[str, list[dict]]) -> None:
    got = {r["URL"]: r for r in rows["split_url_docs"]}
    assert set(got["www.spiderman.com"].values()) == {"www.spiderman.com", None}
    full = got["https://user@shop.example.com:8443/a/b/page.html?q=1&r=2#top"]
    assert {k: v for k, v in full.items() if k != "URL"} == {
        "URL_protocol": "https",
        "URL_authority": "user@shop.example.com:8443",
        "URL_host": "shop.example.com",
        "URL_port": 8443,
        "URL_path": "/a/b/page.html",
        "URL_filename": "page.html",
        "URL_query": "q=1&r=2",
    }
    folder = got["http://x.org/dir/"]
    assert (folder["URL_host"], folder["URL_port"], folder["URL_path"], folder["URL_filename"]) == (
        "x.org",
        None,
        "/dir/",
        None,
    )


def test_parse_html(rows: dict[str, list[dict]]) -> None:
    (row,) = rows["parse_html"]
    assert row["text"] == "Café & bar <3 été next"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)
