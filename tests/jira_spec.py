"""Every request the tests send to a fake Jira Cloud is checked against the official Jira Cloud OpenAPI spec
(tests/fixtures/jira/jira-openapi.json) with openapi-core: tests/conftest.py installs `validate` as the fake's
`REQUEST_CHECK` (connector/sandbox/jira.py), so a non-conforming request is answered 400 and fails the test.
"""

import functools
import json
from pathlib import Path

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

from connector.sandbox.jira import JIRA_DATETIME

SPEC_PATH = Path(__file__).resolve().parent / "fixtures" / "jira" / "jira-openapi.json"


@functools.cache
def openapi():
    spec = json.loads(SPEC_PATH.read_text())
    # The spec says "date-time" (RFC 3339), but Jira only parses yyyy-MM-dd'T'HH:mm:ss.SSSZ with a numeric
    # offset ("...000+0000"; "Z" is rejected): check what the real Jira accepts.
    formats = {"date-time": lambda value: not isinstance(value, str) or bool(JIRA_DATETIME.match(value))}
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None, extra_format_validators=formats))


class _SpecRequest:
    """openapi-core's request protocol over a recorded fake-server request (paths rebased on /rest/api/3)."""

    def __init__(self, request, path):
        self.host_url = "https://your-domain.atlassian.net"
        self.path = path
        self.full_url_pattern = self.host_url + path
        self.method = request.method.lower()
        content_type = request.headers.get("content-type", "application/json").split(";")[0]
        headers = Headers(dict(request.headers))
        self.parameters = RequestParameters(
            query=ImmutableMultiDict([(k, v) for k, vs in request.query.items() for v in vs]),
            header=headers,
            cookie=ImmutableMultiDict(),
            path={},
        )
        self.content_type = content_type
        self.body = request.body or None


def validate(request, path):
    """Return None when the request conforms to the Jira Cloud spec, else the validation error text."""
    try:
        openapi().validate_request(_SpecRequest(request, path))
    except PathNotFound:
        return f"{request.method} {path}: no such operation in the Jira Cloud API"
    except Exception as exc:  # openapi-core raises one of many validation error types
        cause = exc.__cause__ or exc
        details = getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None)
        return f"{request.method} {path}: {exc}" + (f" {list(details)}" if details else "")
    return None
