"""A wheel that pip installed, zipped again from its RECORD: what `cudapkgs build` takes
as input on a machine that has only the installed packages."""

import csv
import os
import zipfile


def rebuild_wheel(site, dist_info, out):
    """The wheel pip installed from `dist_info`, zipped again from its RECORD."""
    name = os.path.basename(dist_info)[: -len(".dist-info")]
    wheel = os.path.join(out, f"{name}-py3-none-manylinux_2_27_x86_64.whl")
    with open(os.path.join(dist_info, "RECORD")) as record, zipfile.ZipFile(wheel, "w") as z:
        for row in csv.reader(record):
            path = os.path.join(site, row[0])
            if row[0] and os.path.isfile(path) and not row[0].startswith(".."):
                z.write(path, row[0])
    return wheel
