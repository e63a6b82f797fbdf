"""The agent's one atomic file write (state file, device id, configuration, service unit)."""
import os
import tempfile
from typing import Union


def write_atomic(path: str, data: Union[str, bytes], mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never half
    of one: a temporary file in the same folder, flushed to disk, then renamed over.
    ``mode`` is set before the rename (0o600 for files holding a secret). Raises OSError
    (ENOSPC on a full disk) and leaves no temporary file behind."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
