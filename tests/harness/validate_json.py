#!/usr/bin/env python3
"""validate_json.py: checks offboard's JSON documents against schemas/*.schema.json.

    validate_json.py SCHEMA_DIR SCHEMA_FILE DOC...

Loads every *.schema.json in SCHEMA_DIR, checks each is a valid draft-07
schema (so no schema file rots), and validates each DOC against SCHEMA_FILE
(a name in SCHEMA_DIR); the schemas refer to each other by their "$id".
A DOC is parsed strictly: a duplicate key, NaN or Infinity is an error.

Exit status: 0 when every DOC is valid, 1 when one is not (each error is
printed), 2 when something else went wrong (a schema, a file, the library),
so that a test expecting 1 cannot pass on a broken setup.

Works with Debian 12's python3-jsonschema (4.10.3, RefResolver) and with
later releases (4.18+, the referencing library).
"""

import glob
import json
import os
import sys

MAX_SHOWN = 10  # errors printed per document


def strict_pairs(kv):
    keys = [k for k, _ in kv]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key in %r" % keys)
    return dict(kv)


def not_json(c):
    raise ValueError("not JSON: " + c)


def load(path):
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"), object_pairs_hook=strict_pairs, parse_constant=not_json)


def validator_for(schemas, root):
    import jsonschema

    cls = jsonschema.Draft7Validator
    for s in schemas.values():
        cls.check_schema(s)
    try:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT7
    except ImportError:
        resolver = jsonschema.RefResolver.from_schema(root, store=dict(schemas))
        return cls(root, resolver=resolver)
    registry = Registry().with_resources(
        (i, Resource.from_contents(s, default_specification=DRAFT7)) for i, s in schemas.items())
    return cls(root, registry=registry)


def main(argv):
    if len(argv) < 4:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    schemas, root = {}, None
    for path in sorted(glob.glob(os.path.join(argv[1], "*.schema.json"))):
        s = load(path)
        if "$id" not in s:
            print("%s: no $id" % path, file=sys.stderr)
            return 2
        schemas[s["$id"]] = s
        if os.path.basename(path) == argv[2]:
            root = s
    if root is None:
        print("%s: no such schema in %s" % (argv[2], argv[1]), file=sys.stderr)
        return 2
    v = validator_for(schemas, root)
    bad = 0
    for path in argv[3:]:
        errors = sorted(v.iter_errors(load(path)), key=lambda e: list(e.absolute_path))
        for e in errors[:MAX_SHOWN]:
            where = "/".join(str(p) for p in e.absolute_path) or "(document)"
            print("%s: %s: %s" % (path, where, e.message), file=sys.stderr)
        if len(errors) > MAX_SHOWN:
            print("%s: ... and %d more" % (path, len(errors) - MAX_SHOWN), file=sys.stderr)
        bad += bool(errors)
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except SystemExit:
        raise
    except BaseException as e:  # a broken setup must not read as "invalid"
        print("validate_json: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(2)
