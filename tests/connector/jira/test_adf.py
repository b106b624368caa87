"""Rendered text → Atlassian Document Format for Jira Cloud v3 descriptions and worklog comments."""

import json

from hypothesis import given
from hypothesis import strategies as st

from connector.jira.adf import to_adf, to_text


def nodes(document, kind):
    found = []

    def walk(node):
        if node.get("type") == kind:
            found.append(node)
        for child in node.get("content") or []:
            walk(child)

    walk(document)
    return found


def test_paragraphs_line_breaks_bullets_and_links():
    document = to_adf(
        "Invoice 0042 was created.\nClient: Zoë Café\n\n- Amount: 100.00 USD\n* Due: 2026-01-31\n\n"
        "Open in FreshBooks: https://my.freshbooks.com/#/invoice/42."
    )
    assert document["type"] == "doc" and document["version"] == 1
    first, bullets, last = document["content"]
    assert first == {
        "type": "paragraph",
        "content": [
            {"type": "text", "text": "Invoice 0042 was created."},
            {"type": "hardBreak"},
            {"type": "text", "text": "Client: Zoë Café"},
        ],
    }
    assert bullets["type"] == "bulletList"
    assert [to_text(item) for item in bullets["content"]] == ["- Amount: 100.00 USD", "- Due: 2026-01-31"]
    assert last["content"][1] == {
        "type": "text",
        "text": "https://my.freshbooks.com/#/invoice/42",
        "marks": [{"type": "link", "attrs": {"href": "https://my.freshbooks.com/#/invoice/42"}}],
    }
    assert last["content"][2] == {"type": "text", "text": "."}  # trailing punctuation is not part of the link


def test_bullets_directly_after_a_line_split_into_paragraph_and_list():
    document = to_adf("Lines:\n- one\n- two\nafter")
    assert [node["type"] for node in document["content"]] == ["paragraph", "bulletList", "paragraph"]


def test_empty_and_blank_text_give_an_empty_document():
    assert to_adf("") == {"type": "doc", "version": 1, "content": []}
    assert to_adf(None)["content"] == []
    assert to_adf(" \n\n \n")["content"] == []


def test_windows_line_endings():
    """CRLF reads like LF: a hard break inside a paragraph, a blank line between paragraphs, no stray \\r."""
    document = to_adf("a\r\nb\r\n\r\nc")
    assert document["content"] == [
        {"type": "paragraph", "content": [{"type": "text", "text": "a"}, {"type": "hardBreak"},
                                          {"type": "text", "text": "b"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "c"}]},
    ]  # fmt: skip
    assert "\r" not in json.dumps(document)


@given(st.text())
def test_any_text_gives_valid_adf_without_empty_text_nodes(text):
    document = to_adf(text)
    assert document["type"] == "doc" and document["version"] == 1
    assert all(node["text"] for node in nodes(document, "text"))
    assert all(node["content"] for node in nodes(document, "paragraph"))
    kept = "".join(node["text"] for node in nodes(document, "text"))
    assert set(kept) <= set(text)
