"""The test suite; its folders mirror the source (tests/connector/jira/ tests connector/jira/, …)."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent  # the repository
FIXTURES = TESTS / "fixtures"
