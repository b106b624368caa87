"""Atlassian Document Format (ADF) from the plain text our templates render, for Jira Cloud v3.

Blank lines separate paragraphs, a single newline is a hard break, lines starting with "- " or "* " form a
bullet list, and http(s) URLs become links. ADF rejects empty text nodes, so none are emitted.
"""

import re

URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
BULLET = re.compile(r"^\s*[-*] +")
BLANK_LINE = re.compile(r"\n[ \t]*\n")


def inline(text):
    """Text and link nodes for one line."""
    nodes, position = [], 0
    for found in URL.finditer(text):
        if found.start() > position:
            nodes.append({"type": "text", "text": text[position : found.start()]})
        url = found.group(0)
        nodes.append({"type": "text", "text": url, "marks": [{"type": "link", "attrs": {"href": url}}]})
        position = found.end()
    if position < len(text):
        nodes.append({"type": "text", "text": text[position:]})
    return nodes


def paragraph(lines):
    content = []
    for line in lines:
        if content:
            content.append({"type": "hardBreak"})
        content += inline(line)
    return {"type": "paragraph", "content": content}


def bullet_list(items):
    return {
        "type": "bulletList",
        "content": [{"type": "listItem", "content": [paragraph([item])]} for item in items],
    }


def block(text):
    """The nodes of one blank-line-separated block: runs of bullet lines and runs of other lines."""
    nodes, lines, items = [], [], []
    for line in text.split("\n"):
        line = line.rstrip()
        if BULLET.match(line):
            if lines:
                nodes.append(paragraph(lines))
                lines = []
            items.append(BULLET.sub("", line, count=1))
        elif line.strip():
            if items:
                nodes.append(bullet_list(items))
                items = []
            lines.append(line)
    if lines:
        nodes.append(paragraph(lines))
    if items:
        nodes.append(bullet_list(items))
    return nodes


def to_adf(text):
    """An ADF document (version 1) for `text`; empty text gives a document with no content."""
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    content = []
    for part in BLANK_LINE.split(text):
        content += block(part)
    return {"type": "doc", "version": 1, "content": content}


def to_text(document):
    """The plain text of an ADF document (for tests and previews): paragraphs joined by blank lines."""

    def walk(node):
        node_type = node.get("type")
        if node_type == "text":
            return node.get("text", "")
        if node_type == "hardBreak":
            return "\n"
        parts = [walk(child) for child in node.get("content", [])]
        if node_type in ("doc",):
            return "\n\n".join(parts)
        if node_type == "bulletList":
            return "\n".join(parts)
        if node_type == "listItem":
            return "- " + "".join(parts)
        return "".join(parts)

    return walk(document or {})
