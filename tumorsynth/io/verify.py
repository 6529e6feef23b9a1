"""Whether an image file holds all the data its header promises, and why a write failed.

Some writers report nothing when a write is cut short: SimpleITK's NIfTI writer, on a full disk
or at a file-size limit (``ulimit -f``), prints to stderr and returns, leaving a short file; and
SimpleITK reads a short NIfTI without complaint (the missing voxels come back as 0). These checks
read only headers and trailers, never the voxels:

- NIfTI-1/-2 (``.nii``): the file holds ``vox_offset`` plus the voxel bytes of its header;
  ``.nii.gz``: the gzip trailer's length (ISIZE) equals that, else the whole stream is inflated
  and counted;
- MetaImage (``.mha``): the bytes after ``ElementDataFile = LOCAL`` equal ``CompressedDataSize``,
  or the voxel bytes of ``DimSize`` and ``ElementType``;
- NRRD (``.nrrd``): the raw data, or the gzip stream's ISIZE, equals the voxel bytes of
  ``sizes`` and ``type``.
"""

from __future__ import annotations

import errno
import gzip
import os
import re
import zlib
from pathlib import Path

import numpy as np

from tumorsynth.errors import InputError
from tumorsynth.io.nifti import nifti_header

__all__ = [
    "check_image_complete",
    "check_nifti_complete",
    "describe_os_error",
    "write_failure_cause",
]

_MET_BYTES = {
    "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
    "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
    "MET_DOUBLE": 8,
}  # fmt: skip
_NRRD_BYTES = {
    1: ("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"),
    2: ("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
        "unsigned short", "unsigned short int", "uint16", "uint16_t"),
    4: ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t",
        "float"),
    8: ("longlong", "long long", "long long int", "signed long long", "signed long long int",
        "int64", "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64",
        "uint64_t", "double"),
}  # fmt: skip
_ERRNO_TEXT = {
    getattr(errno, name, None): text
    for name, text in [
        ("ENOSPC", "no space left on the device: the disk is full"),
        ("EFBIG", "file too large: a file-size limit (ulimit -f) was reached"),
        ("EROFS", "read-only file system"),
        ("EDQUOT", "disk quota exceeded"),  # not on Windows
        ("EACCES", "permission denied"),
        ("EPERM", "operation not permitted"),
    ]
}
_NEARLY_FULL_BYTES = 64 << 20


def _gzip_length(path: Path, offset: int, need: int) -> int | None:
    """The inflated length of the gzip data from ``offset`` on (all members); ``need`` when the
    last member's trailer says so (the cheap case: one member, complete); None when the stream is
    cut short or corrupt."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() - offset >= 18:  # the smallest gzip member
            f.seek(-4, os.SEEK_END)
            if int.from_bytes(f.read(4), "little") == need % 2**32:
                return need
        f.seek(offset)
        have = 0
        try:
            with gzip.GzipFile(fileobj=f, mode="rb") as z:
                while chunk := z.read(1 << 22):
                    have += len(chunk)
        except (OSError, EOFError, zlib.error):
            return None
    return have


def _nifti_short(path: Path, strict: bool) -> str | None:
    """What is missing from a NIfTI file, or None when it is complete; a header that cannot be
    read is missing data when ``strict``, else passes (the reader names it better)."""
    gz = path.name.lower().endswith(".gz")
    try:
        with gzip.open(path, "rb") if gz else open(path, "rb") as f:
            header = nifti_header(f.read(544))
    except (OSError, EOFError, zlib.error):
        header = None
    need = None if header is None else header.data_bytes
    if need is None:
        return "its header is incomplete" if strict else None
    have = _gzip_length(path, 0, need) if gz else path.stat().st_size
    if have is None:
        return f"its gzip stream ends early; the NIfTI header promises {need} bytes"
    if have < need:
        return f"the header promises {need} bytes, the file holds {have}"
    return None


def check_nifti_complete(path: Path) -> None:
    """Raise when a NIfTI file (``.nii``, ``.nii.gz``) holds less data than its header promises;
    other files, and files whose header cannot be read, pass (the reader names those better).

    Raises
    ------
    InputError
        Naming the file, what the header promises and what it holds.
    """
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        return
    short = _nifti_short(path, strict=False)
    if short is not None:
        raise InputError(f"{path}: truncated NIfTI ({short})")


def _text_header(path: Path, end: bytes, limit: int = 1 << 16) -> tuple[str, int] | None:
    with open(path, "rb") as f:
        head = f.read(limit)
    at = head.find(end)
    if at < 0:
        return None
    return head[:at].decode("latin-1"), at + len(end)


def _mha_short(path: Path) -> str | None:
    """What is missing from a MetaImage file, or None when it is complete."""
    found = _text_header(path, b"ElementDataFile = LOCAL\n")
    if found is None:
        return "its header is incomplete"
    text, start = found
    fields = dict(re.findall(r"^(\w+) = (.*)$", text, flags=re.M))
    try:
        if fields.get("CompressedData", "False").strip() == "True":
            need = int(fields["CompressedDataSize"])
        else:
            dims = [int(n) for n in fields["DimSize"].split()]
            channels = int(fields.get("ElementNumberOfChannels", "1"))
            need = int(np.prod(dims, dtype=np.int64)) * channels
            need *= _MET_BYTES[fields["ElementType"].strip()]
    except (KeyError, ValueError):
        return "its header is incomplete"
    have = path.stat().st_size - start
    return None if have >= need else f"the header promises {need} data bytes, the file holds {have}"


def _nrrd_short(path: Path) -> str | None:
    """What is missing from a NRRD file with attached data, or None when it is complete."""
    found = _text_header(path, b"\n\n")
    if found is None:
        return "its header is incomplete"
    text, start = found
    fields = {k.strip(): v.strip() for k, v in re.findall(r"^([^:#\n]+):=?\s*(.*)$", text, re.M)}
    if "data file" in fields or "datafile" in fields:
        return None  # detached data: not written by write_volume
    size = next((n for n, names in _NRRD_BYTES.items() if fields.get("type") in names), None)
    try:
        need = int(np.prod([int(n) for n in fields["sizes"].split()], dtype=np.int64)) * size
    except (KeyError, TypeError, ValueError):
        return "its header is incomplete"
    if fields.get("encoding") in ("gzip", "gz"):
        have = _gzip_length(path, start, need)
        if have is None:
            return "its gzip stream ends early"
    else:
        have = path.stat().st_size - start
    return None if have >= need else f"the header promises {need} data bytes, the file holds {have}"


def check_image_complete(path: Path, name: Path | None = None) -> None:
    """Raise unless the image file ``path`` (NIfTI, MetaImage or NRRD) holds all the data its
    header promises: the check of every write, before the file is renamed into place.

    Parameters
    ----------
    path : Path
        The file written (a temporary name).
    name : Path, optional
        The name to report (the file's final name); default ``path``.

    Raises
    ------
    InputError
        Naming the file, what is missing and the likely cause (:func:`write_failure_cause`).
    """
    name = path if name is None else name
    lower = path.name.lower()
    try:
        if lower.endswith((".nii", ".nii.gz")):
            short = _nifti_short(path, strict=True)
        elif lower.endswith(".mha"):
            short = _mha_short(path)
        elif lower.endswith(".nrrd"):
            short = _nrrd_short(path)
        else:
            short = None
    except (OSError, EOFError, zlib.error) as err:
        short = f"it cannot be read back ({getattr(err, 'strerror', None) or err})"
    if short is not None:
        raise InputError(
            f"{name}: the write was cut short ({short}); likely cause: "
            f"{write_failure_cause(path.parent)}"
        )


def write_failure_cause(folder: Path) -> str:
    """The likely reason a write into ``folder`` failed without saying why: a read-only file
    system, a (nearly) full disk, or a file-size limit (``ulimit -f``)."""
    try:
        stat = os.statvfs(folder)
    except (OSError, AttributeError):
        stat = None
    if stat is not None and stat.f_flag & getattr(os, "ST_RDONLY", 1):
        return "the file system is read-only"
    if stat is not None and stat.f_bavail * stat.f_frsize < _NEARLY_FULL_BYTES:
        free = stat.f_bavail * stat.f_frsize
        return f"the disk is full ({free / 2**20:.1f} MiB free)"
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError, ValueError):
        soft = None
    if soft is not None and soft != resource.RLIM_INFINITY:
        return f"a file-size limit of {soft} bytes is set (ulimit -f)"
    return "the disk may be full, over its quota, or gone"


def describe_os_error(err: OSError) -> str:
    """An OSError as a few words: the cause for the errors of a full or read-only disk, else the
    system's text."""
    return _ERRNO_TEXT.get(err.errno or -1, err.strerror or str(err))
