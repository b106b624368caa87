"""Rendered text → the JSON value a Jira field of each type takes (connector.jira.fields.convert)."""

import pytest

from connector.jira import fields as field_types
from connector.jira.dialect import CLOUD, SERVER


@pytest.mark.parametrize(
    ("field_type", "text", "expected"),
    [
        ("string", "10045", "10045"),
        ("auto", "3.10", "3.10"),
        ("auto", '"12"', "12"),
        ("auto", '{"id": "10001"}', {"id": "10001"}),
        ("number", "3.10", 3.1),
        ("number", "42", 42),
        ("date", "2023-08-09T19:56:50Z", "2023-08-09"),
        ("datetime", "2023-08-09T21:56:50+02:00", "2023-08-09T19:56:50.000+0000"),
        ("options", "Gold, Silver", [{"value": "Gold"}, {"value": "Silver"}]),
        ("strings", "a b", ["a", "b"]),
    ],
)
def test_convert(field_type, text, expected):
    assert field_types.convert(field_type, text, CLOUD) == expected


@pytest.mark.parametrize(("field_type", "text"), [("number", "1e400"), ("number", "nan"), ("number", "Infinity"),
                                            ("json", "NaN"), ("date", "someday")])  # fmt: skip
def test_convert_refuses_what_is_not_valid_json_for_the_field(field_type, text):
    with pytest.raises(field_types.FieldValueError):
        field_types.convert(field_type, text, CLOUD)


def test_user_fields_follow_the_deployment():
    assert field_types.convert("user", "5b10a2844c20165700ede21g", CLOUD) == {
        "accountId": "5b10a2844c20165700ede21g"
    }
    assert field_types.convert("user", "jdoe", SERVER) == {"name": "jdoe"}
    assert field_types.convert("users", "jdoe, rita", SERVER) == [{"name": "jdoe"}, {"name": "rita"}]


@pytest.mark.parametrize(
    ("schema", "field_type"),
    [
        ({"type": "string", "custom": field_types.TEXTFIELD}, "string"),
        ({"type": "string", "custom": field_types.TEXTAREA}, "text"),
        ({"type": "number"}, "number"),
        ({"type": "array", "items": "option"}, "options"),
        ({"type": "array", "items": "user"}, "users"),
        ({"type": "option-with-child"}, "auto"),
        ({}, "auto"),
    ],
)
def test_field_type_of_jiras_schema(schema, field_type):
    assert field_types.field_type_of(schema) == field_type
