"""Atomic file output: a reader sees the old file or the complete new one, never a part."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

__all__ = ["atomic_write_bytes"]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically.

    Writes a temporary file in the same folder and fsyncs it, then publishes it: with
    ``overwrite``, by ``os.replace``; without, by ``os.link`` (which refuses an existing
    ``path`` at the moment of publishing, so two writers racing for one name cannot both
    win) and removal of the temporary name. On file systems without hard links, the name
    is claimed with ``O_CREAT | O_EXCL`` first and then replaced. The folder is fsynced
    (best effort). On any failure the temporary file is removed and ``path`` is left as it
    was; ``FileExistsError`` when ``path`` exists and ``overwrite`` is false. Errors name
    ``path``, never the temporary file. The new file gets the usual permissions (0o666
    minus the umask), not a private temp-file mode.
    """
    path = Path(path)
    folder = path.parent
    for _ in range(100):
        tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        break
    else:
        raise FileExistsError(f"could not create a temporary file next to {path}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _publish_new(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) != str(path):
            raise type(exc)(exc.errno, exc.strerror, str(path)) from None
        raise
    _fsync_folder(folder)


def _publish_new(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` only if no file has that name (atomically where the
    file system has hard links)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "file exists", str(path)) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # claim the name
        os.replace(tmp, path)
        return
    tmp.unlink()


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
