"""The OD API's label map (string_int_label_map.proto, text format): ids from 1, 0 is background."""

from __future__ import annotations

import json
import re

from synth.errors import ConfigError

_NAME_RE = re.compile(r"^[^\n'\"\\]+$")


def label_map_text(class_names: list[str]) -> str:
    """Text of a label map whose ids are 1 + position in `class_names`."""
    out = []
    for i, name in enumerate(class_names, start=1):
        if not _NAME_RE.match(name):
            raise ConfigError(f"class name {name!r} cannot go into a label map: "
                              "quotes, backslashes and newlines are not allowed")
        out.append(f"item {{\n  id: {i}\n  name: {json.dumps(name)}\n}}\n")
    return "".join(out)


def read_label_map(path: str) -> dict[int, str]:
    """{id: name} of a label map file, parsed with the OD API's label map schema."""
    import os

    from google.protobuf import text_format
    from object_detection.protos import string_int_label_map_pb2

    if not os.path.isfile(path):
        raise ConfigError(f"label map {path!r} does not exist")
    msg = string_int_label_map_pb2.StringIntLabelMap()
    try:
        with open(path, encoding="utf-8") as f:
            text_format.Parse(f.read(), msg)
    except (OSError, text_format.ParseError) as exc:
        raise ConfigError(f"label map {path!r} cannot be parsed: {exc}") from None
    return {item.id: (item.display_name or item.name) for item in msg.item}
