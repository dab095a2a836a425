"""Small file helpers shared by every floor: atomic writes and the clean-up after a killed writer."""
import os
import tempfile
import time
from typing import Any, Dict, List, Optional

import yaml

__all__ = ["TEMP_PREFIX", "atomic_write", "process_start_time", "remove_orphaned_temporaries", "read_yaml_mapping"]

TEMP_PREFIX = ".tmp-"       # every temporary of atomic_write: <dir>/.tmp-<random><final name>


def atomic_write(path: str, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``: readers never see a partial file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=os.path.basename(path))
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def process_start_time() -> float:
    """The start of the current process as a Unix time (from /proc; the current time where /proc is missing)."""
    try:
        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        ticks = int(fields[19])                              # field 22 of proc(5): starttime in clock ticks
        with open("/proc/stat", "rb") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith(b"btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


def remove_orphaned_temporaries(directory: str, older_than: Optional[float] = None) -> List[str]:
    """Delete the temporaries a killed :func:`atomic_write` left in ``directory`` (not below it):
    files named ``.tmp-*`` last modified before ``older_than`` (default: this process's start, so a
    write in progress elsewhere is left alone). Returns the removed paths, sorted."""
    if not os.path.isdir(directory):
        return []
    cutoff = process_start_time() if older_than is None else older_than
    removed = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not name.startswith(TEMP_PREFIX) or not os.path.isfile(path) or os.path.islink(path):
            continue
        try:
            if os.path.getmtime(path) < cutoff:
                os.remove(path)
                removed.append(path)
        except FileNotFoundError:        # renamed or removed by its writer meanwhile
            continue
    return removed


def read_yaml_mapping(path: str, what: str = "file", expected: str = "a mapping") -> Dict[str, Any]:
    """The YAML mapping in ``path`` (an empty file is ``{}``). ValueError, one line naming ``what`` and
    the file, when it is missing, unreadable, not YAML or not a mapping (``expected`` says what should be there)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ValueError(f"{what} {path} does not exist") from None
    except OSError as e:
        raise ValueError(f"{what} {path} cannot be read: {e.strerror or e}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"{what} {path} is not valid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} must hold {expected}, found {type(data).__name__}")
    return data
