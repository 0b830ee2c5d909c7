"""docs/api.md keeps up with the API: every path of the schema, every open-data column and
field, every filter and the throttling settings are documented."""

import re
from pathlib import Path

from drf_spectacular.generators import SchemaGenerator

from conventions.api import OPEN_CSV_COLUMNS, OpenConventionSerializer

DOC = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")


def test_every_resource_and_its_filters_are_documented():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        resource = path.removeprefix("/api/v1/").split("/")[0]
        assert f"/api/v1/{resource}/" in DOC or path in DOC, path
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    assert f"`{parameter['name']}`" in DOC, f"{path}: {parameter['name']}"


def test_every_open_data_column_and_field_is_documented():
    csv_section = DOC.split("### CSV")[1]
    json_section = DOC.split("### JSON")[1].split("### CSV")[0]
    for column in OPEN_CSV_COLUMNS:
        assert re.search(rf"^\| `{column}` ", csv_section, re.MULTILINE), column
    for field in OpenConventionSerializer().fields:
        assert re.search(rf"^\| `{field}` ", json_section, re.MULTILINE), field


def test_the_throttling_settings_and_page_size_limit_are_documented():
    assert "MUTUALIS_API_USER_RATE" in DOC
    assert "MUTUALIS_API_ANON_RATE" in DOC
    assert "au plus 500" in DOC


ENGLISH = re.compile(r"\b(the|their|they|may|user|of the|and|whose)\b")


def test_every_operation_is_described_in_french():
    """The schema and the Swagger UI are read by the API's users: French descriptions, not the
    views' docstrings."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            description = operation.get("description", "")
            assert description, f"{method} {path}"
            assert not ENGLISH.search(description), f"{method} {path}: {description}"
