"""Checks the JSON documents only a GPU machine can print against their schemas.

Runs `gpu-check` (with and without `--nix-hook`) and `inspect --gpu native` on a
Python environment's CUDA libraries, and validates each document against its schema in
docs/schema/ with the `jsonschema` package, every object closed to the keys its schema
names (as the tests' own checker does). Exit 1 when a document does not fit.

    python scripts/gpu-documents.py [--cudapkgs target/release/cudapkgs] [--out DIR]
"""

import argparse
import json
import pathlib
import site
import subprocess
import sys

try:
    from jsonschema import Draft202012Validator
except ImportError:
    sys.exit("gpu-documents: needs the jsonschema package (pip install jsonschema)")

REPO = pathlib.Path(__file__).resolve().parent.parent


def closed(node):
    """The schema with `additionalProperties: false` wherever it names properties."""
    if isinstance(node, dict):
        node = {key: closed(value) for key, value in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [closed(value) for value in node]
    return node


def document(cudapkgs, args):
    """The JSON document `cudapkgs --json ARGS` prints (exit 0 or 1)."""
    run = subprocess.run([cudapkgs, "--json", *args], capture_output=True, text=True, check=False)
    if run.returncode not in (0, 1):
        sys.exit(f"gpu-documents: {args} exited {run.returncode}: {run.stderr}")
    return json.loads(run.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cudapkgs", default=str(REPO / "target/release/cudapkgs"))
    parser.add_argument("--site-packages", default=site.getsitepackages()[0])
    parser.add_argument("--out", help="keep the documents in this folder")
    args = parser.parse_args()
    packages = pathlib.Path(args.site_packages)
    torch = next(packages.rglob("libtorch_cuda.so"), None)
    runs = {
        "gpu-check": ["gpu-check", "--no-loads", str(packages)],
        "gpu-check-nix-hook": ["gpu-check", "--nix-hook"],
    }
    if torch is not None:
        runs["inspect"] = ["inspect", "--gpu", "native", "--gpu", "8.0", str(torch)]
    problems = 0
    for schema_name, command in runs.items():
        data = document(args.cudapkgs, command)
        if args.out:
            out = pathlib.Path(args.out) / f"{schema_name}.json"
            out.write_text(json.dumps(data, indent=2))
        schema = json.loads((REPO / "docs/schema" / f"{schema_name}.json").read_text())
        schema = closed(schema)
        Draft202012Validator.check_schema(schema)
        errors = list(Draft202012Validator(schema).iter_errors(data))
        print(f"{' '.join(command[:2])}: {len(errors)} problems against {schema_name}")
        for error in errors[:10]:
            print(f"    {list(error.absolute_path)}: {error.message[:200]}")
        problems += len(errors)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
