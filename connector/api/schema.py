"""The OpenAPI schema's error answers (a drf-spectacular postprocessing hook): every operation documents the
errors DRF gives it — 400 field errors, 401 no or bad token, 403 missing permission, 404, 415 (not JSON) and
429 (throttled) — in DRF's shapes, so clients and the schemathesis run can hold every answer to the schema."""

ERROR = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
    "description": 'DRF\'s error shape: {"detail": "…"}.',
}
FIELD_ERRORS = {
    "type": "object",
    "additionalProperties": True,
    "description": 'DRF\'s validation errors, by field: {"dry_run": ["Must be a valid boolean."]} '
    '(or {"detail": "…"} for a body that is not JSON).',
}
ERRORS = {
    "400": ("ValidationError", "Invalid parameters or body."),
    "401": ("Error", "No credentials, or a token that is malformed, unknown, revoked or expired."),
    "403": ("Error", "The caller's permissions do not allow it."),
    "404": ("Error", "No such object, page or path."),
    "429": ("Error", "Too many requests: wait the Retry-After seconds."),
}
BODY_ERRORS = {"415": ("Error", "The body is not application/json.")}


def add_error_responses(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("ValidationError", FIELD_ERRORS)
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            errors = {**ERRORS, **(BODY_ERRORS if method in ("post", "put", "patch") else {})}
            responses = operation.setdefault("responses", {})
            for code, (component, text) in errors.items():
                responses.setdefault(
                    code,
                    {
                        "description": text,
                        "content": {
                            "application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}
                        },
                    },
                )
    return result
