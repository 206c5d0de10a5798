"""The files that roots named on a command line stand for: a file as itself, a folder
walked in name order for the regular files (never links) that `wanted` keeps."""

import os


def files_under(roots, wanted):
    for root in roots:
        if os.path.isfile(root):
            yield root
            continue
        for folder, _, names in os.walk(root):
            for name in sorted(names):
                path = os.path.join(folder, name)
                if not os.path.islink(path) and os.path.isfile(path) and wanted(path):
                    yield path
