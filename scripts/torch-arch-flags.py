#!/usr/bin/env python3
"""Run PyTorch's own `_get_cuda_arch_flags` from a cpp_extension.py, for one
TORCH_CUDA_ARCH_LIST, and print the nvcc flags it returns as JSON, or the error it
raises (exit 1).

    python3 scripts/torch-arch-flags.py torch/utils/cpp_extension.py "9.0;10.0f"

The function is taken from the file as it is (parsed, not copied) and run with the
standard library modules it uses. With TORCH_CUDA_ARCH_LIST set it never reaches
`torch` (that branch asks the visible GPUs), so torch itself is not imported; if a
future version does reach it, the run fails loudly rather than guessing.
"""
import ast
import collections
import json
import logging
import os
import re
import sys


def main() -> int:
    path, arch_list = sys.argv[1], sys.argv[2]
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    function = next(
        node for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == "_get_cuda_arch_flags"
    )
    module = ast.Module(body=[function], type_ignores=[])
    namespace = {
        "os": os,
        "re": re,
        "collections": collections,
        "logger": logging.getLogger("cpp_extension"),
        "Optional": __import__("typing").Optional,
    }
    exec(compile(module, path, "exec"), namespace)
    os.environ["TORCH_CUDA_ARCH_LIST"] = arch_list
    try:
        flags = namespace["_get_cuda_arch_flags"]()
    except ValueError as error:
        print(json.dumps({"error": str(error)}))
        return 1
    print(json.dumps({"flags": flags}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
