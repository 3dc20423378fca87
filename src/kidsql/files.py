"""Files on disk: the one atomic write, JSON on top of it, cache keys and checksums.

Why one module: reports, caches (prompts, teacher sequences, teacher logits, value indexes) and model cards are
read by later runs and by parallel processes, so every write goes through a temp file in the target folder and
`os.replace`: a killed run never leaves half a file, and a reader sees the old file or the new one. The temp
name is unique per writer (pid, thread, random suffix), so two processes writing one cache never share a temp
file. Cache keys hash the canonical JSON of everything that decides the cached content, so a changed input
never reuses a stale file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from kidsql.errors import KidsqlError

# ----------------------------------------------------------------------------------------------- writing


def write_atomic(path: Path | str, content: str | bytes | Callable[[BinaryIO], Any]) -> Path:
    """Write `content` (text as UTF-8, bytes, or a function that writes to the open binary file, e.g.
    `torch.save` or `pickle.dump`) to `path` via a uniquely named temp file beside it and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as fh:  # "x": a name that already exists is an error, never a shared file
            if callable(content):
                content(fh)
            else:
                fh.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path | str, data: Any) -> Path:
    """Pretty JSON, atomically (non-JSON values such as Paths become strings)."""
    return write_atomic(path, json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n")


def read_json(path: Path | str) -> Any:
    """JSON with a one-line error naming the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KidsqlError(f"{path}: file not found; run the step that writes it first") from None
    except json.JSONDecodeError as err:
        raise KidsqlError(f"{path}: malformed JSON ({err.msg} at line {err.lineno}); delete it and re-run") from None


def build_folder_once(final: Path, build: Callable[[Path], Any], *, marker: str) -> Path:
    """`build` into a temp folder beside `final`, then rename it to `final`: a killed run never leaves a
    half-written folder that a later run would trust. When another process renamed its copy first (`final`
    already holds `marker`), that copy is kept."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / marker).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# ------------------------------------------------------------------------------------------------ hashing


def hex_digest(data: str | bytes | Iterable[str | bytes], length: int | None = None, *,
               algorithm: str = "sha256") -> str:
    """Hex digest of `data` (text as UTF-8; an iterable is hashed chunk by chunk, as one concatenated input),
    cut to `length` hex digits. `algorithm` exists for the value-index cache, whose names on disk are sha1."""
    digest = hashlib.new(algorithm)
    for chunk in [data] if isinstance(data, (str, bytes)) else data:
        digest.update(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
    return digest.hexdigest()[:length]


def cache_key(identity: Any, length: int | None = 16) -> str:
    """sha256 of the canonical JSON (sorted keys) of `identity` (everything that decides a cached content), cut
    to `length` hex digits: the name of a cache entry."""
    return hex_digest(json.dumps(identity, sort_keys=True), length)


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (model weights are large)."""
    with open(path, "rb") as fh:
        return hex_digest(iter(lambda: fh.read(1 << 20), b""))
