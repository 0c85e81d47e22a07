"""Checkpoints: written atomically, read with ``weights_only=True``.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts,
so it loads without unpickling arbitrary objects. Writing goes to a
temporary file in the same folder that is then renamed over the target: a
crash or a kill mid-write leaves the previous checkpoint intact, and the
next write into the same folder removes what a killed writer left behind.

A run folder has one owner: ``owned_folder`` holds an OS lock on the folder
(``flock``, released by the kernel when its holder dies, even by SIGKILL)
while a process trains into it; a second process is refused at once.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


def _new_file_mode() -> int:
    """The mode ``open()`` gives a new file: 0o666 less the umask (``mkstemp`` makes it 0o600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_NEW_FILE_MODE = _new_file_mode()
log = logging.getLogger(__name__)
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable or not one of ours, or its folder is another process's."""


class FolderBusy(CheckpointError):
    """Another process is training into the folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


_TEMPORARY = re.compile(r"\..+\.(\d+)@([^.]+)\.[^.]+\.tmp")


def remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporary files that writers which died mid-write (killed, say) left in ``folder``.

    A temporary file is named ``.<name>.<pid>@<host>.<random>.tmp`` after the process writing it; one whose
    process on this host is gone is stale. (A folder on a cluster's shared disk: another host's files are left
    alone. A reused pid only keeps a stale file until a later write.)
    """
    for candidate in folder.glob(".*.tmp"):
        match = _TEMPORARY.fullmatch(candidate.name)
        if match and match.group(2) == _HOST and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            candidate.unlink(missing_ok=True)


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file onto ``path``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "a folder is in the way", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    prefix = f".{path.name}.{os.getpid()}@{_HOST}."
    longest = os.pathconf(path.parent, "PC_NAME_MAX")
    if len(prefix) + 8 + len(".tmp") > longest:  # mkstemp adds 8 characters
        raise OSError(errno.ENAMETOOLONG, f"name too long: its temporary file's name would pass the {longest} characters a name may have", str(path))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    os.fchmod(fd, _NEW_FILE_MODE)  # else every checkpoint, figure and sample is private to its owner
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, payload: dict) -> None:
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a damaged file
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(error).__name__})") from None
    if not isinstance(payload, dict) or "model_state" not in payload:
        raise CheckpointError(f"{path} is not a unimodel checkpoint")
    return payload


@contextmanager
def owned_folder(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for this process while the block runs; refuse if another holds it.

    The lock is ``flock`` on the folder itself, so nothing is left behind and a killed holder frees it.
    A folder this call created and that is still empty at the end is removed: a failed run leaves no trace.
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusy(f"another process is training into {folder}; wait for it to finish or choose another folder") from None
        except OSError as error:  # a file system without locks on folders (some network mounts): train unguarded, and say so
            if error.errno not in (errno.ENOLCK, errno.EBADF, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            log.warning("unimodel: %s cannot be locked (%s); nothing stops a second process training into it", folder, error.strerror)
        try:
            yield folder
        finally:
            if created and not any(folder.iterdir()):
                folder.rmdir()
    finally:
        os.close(fd)  # releases the lock
