#!/usr/bin/env python3
"""Validates CycloneDX 1.5 JSON files with cyclonedx-python-lib's strict JSON
validator (the reference schema, formats included); pinned in
scripts/test-requirements.txt. Exit 0 when every FILE is valid, 1 otherwise,
each problem on stderr with the file's name."""

import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: validate-cyclonedx.py FILE...", file=sys.stderr)
        return 64
    validator = JsonStrictValidator(SchemaVersion.V1_5)
    status = 0
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            error = validator.validate_str(handle.read())
        if error is not None:
            # The schema error's message and where it is, not the whole schema it quotes.
            detail = getattr(error.data, "message", str(error))
            where = "/".join(str(p) for p in getattr(error.data, "absolute_path", []))
            print(f"{path}: not valid CycloneDX 1.5: {detail} (at /{where})", file=sys.stderr)
            status = 1
        else:
            print(f"{path}: valid CycloneDX 1.5")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
