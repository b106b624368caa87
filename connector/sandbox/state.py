"""The sandbox's vendor state on disk: JSON that keeps sets and non-string dict keys (callback ids are ints).

`dump(state)` / `load(text)` round-trip what the fakes keep in `server.state`; callables (test hooks) and
values JSON cannot hold are left out. Writes go to a temporary file renamed over the old one (atomic).
"""

import json
import os
from pathlib import Path


def _encode(value):
    if isinstance(value, set):
        return {"__set__": [_encode(v) for v in sorted(value, key=str)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v) for k, v in value.items() if not callable(v)}
        return {"__items__": [[k, _encode(v)] for k, v in value.items() if not callable(v)]}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {"__set__"}:
            return set(_decode(v) for v in value["__set__"])
        if set(value) == {"__items__"}:
            return {k: _decode(v) for k, v in value["__items__"]}
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def dump(state):
    return json.dumps(_encode(state), default=str)


def load(text):
    return _decode(json.loads(text))


def save(path, states):
    """Write {server name: state} to `path` atomically."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(dump(states))
    os.replace(tmp, path)


def read(path):
    """{server name: state} from `path`, or {} when there is none (a first run)."""
    path = Path(path)
    return load(path.read_text()) if path.is_file() else {}
