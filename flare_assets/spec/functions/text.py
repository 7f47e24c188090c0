"""Flare functions that take text apart: e-mail addresses, URLs, HTML."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from flare_assets.spec.functions.base import ColumnFunction, FunctionSpec, added

URL_PARTS = ("protocol", "authority", "host", "port", "path", "filename", "query")


class TextFunction(FunctionSpec):
    FAMILY: ClassVar[str] = "text"


class SplitEmail(TextFunction):
    """`<column>_account` and `<column>_domain` from an e-mail address (null for a missing part)."""

    name: Literal["split_email"]
    column: str = Field(description="the column holding e-mail addresses")

    def reads(self) -> list[str]:
        return [self.column]

    def columns_after(self, columns: list[str]) -> list[str]:
        return added(columns, f"{self.column}_account", f"{self.column}_domain")


class SplitUrl(TextFunction):
    """`<column>_protocol`, `_authority`, `_host`, `_port`, `_path`, `_filename` and `_query` of a URL."""

    name: Literal["split_url"]
    column: str = Field(description="the column holding URLs")

    def reads(self) -> list[str]:
        return [self.column]

    def columns_after(self, columns: list[str]) -> list[str]:
        return added(columns, *(f"{self.column}_{part}" for part in URL_PARTS))


class ParseHtml(TextFunction, ColumnFunction):
    """HTML as plain text: tags, comments, scripts and styles removed, entities decoded, spaces collapsed."""

    name: Literal["parse_html"]


FUNCTIONS: tuple[type[FunctionSpec], ...] = (SplitEmail, SplitUrl, ParseHtml)
