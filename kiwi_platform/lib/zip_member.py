"""ZIP entries with every field fixed, so only the data decides an archive's bytes.

Shards (`lib/shards.py`) and clip files (`media/clip_zip.py`) are both uncompressed ZIPs that must
be byte-identical for the same members on any machine and day: a table hash or DVC md5 changes
only when the data does. zipfile would otherwise stamp the current time, the umask's permissions
and the platform's creator system into every entry.
"""

from __future__ import annotations

import zipfile

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date ZIP can store; a timestamp would make every write a new version
_ZIP_MODE = 0o100644 << 16  # regular file, rw-r--r--, whatever the umask or platform


def member(name: str, size: int | None = None) -> zipfile.ZipInfo:
    """A stored entry named `name`; with `size` known up front zipfile picks ZIP64 itself for huge members."""
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3  # Unix; ZipInfo picks 0 on Windows
    info.external_attr = _ZIP_MODE
    if size is not None:
        info.file_size = size
    return info
