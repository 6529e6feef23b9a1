"""Writes that fail (a full disk, a file-size limit) raise, name the file, and leave nothing under
the final name; every format's check of a complete file."""

from __future__ import annotations

import errno
import gzip
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from toy import run_with_file_size_limit

from tumorsynth import InputError
from tumorsynth.io.volume import read_volume, write_text_atomic, write_volume

LIMIT_BYTES = 20_000  # far less than the 128 kB of voxels below, more than the headers

WRITE_ALL = """
import sys
import numpy as np
from tumorsynth.errors import InputError
from tumorsynth.io.volume import write_text_atomic, write_volume

array = np.random.default_rng(0).integers(-1000, 1000, (40, 40, 40)).astype(np.int16)
for ext in (".nii.gz", ".nii", ".nrrd", ".mha", ".txt"):
    path = sys.argv[1] + "/v" + ext
    try:
        if ext == ".txt":
            write_text_atomic(path, "x" * 30000)
        else:
            write_volume(path, array, (1.0, 1.0, 1.0))
        print(ext, "written")
    except InputError as err:
        print(ext, "InputError", err)
"""


def test_writes_cut_short_by_a_file_size_limit_raise_and_leave_nothing(tmp_path):
    done = run_with_file_size_limit([sys.executable, "-c", WRITE_ALL, tmp_path], LIMIT_BYTES)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 5, done.stdout
    for line, ext in zip(lines, (".nii.gz", ".nii", ".nrrd", ".mha", ".txt"), strict=True):
        assert line.startswith(f"{ext} InputError {tmp_path / ('v' + ext)}: "), line
        assert "file-size limit" in line, line
    assert os.listdir(tmp_path) == []  # no file under its final name, no temporary


@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize("compress", [True, False])
def test_complete_files_pass_and_every_cut_is_found(tmp_path, ext, compress):
    from tumorsynth.io.verify import check_image_complete

    array = np.random.default_rng(1).integers(-1000, 1000, (30, 20, 10)).astype(np.int16)
    path = write_volume(tmp_path / f"v{ext}", array, (1.0, 1.0, 2.0), compress=compress)
    check_image_complete(path)
    data = path.read_bytes()
    for keep in (0, 100, len(data) // 2, len(data) - 1):
        cut = tmp_path / f"cut{ext}"
        cut.write_bytes(data[:keep])
        with pytest.raises(InputError, match=rf"^{cut}: the write was cut short \("):
            check_image_complete(cut)


def test_multi_member_gzip_is_complete(tmp_path):
    from tumorsynth.io.verify import check_image_complete

    path = write_volume(tmp_path / "v.nii.gz", np.ones((20, 20, 20), np.int16), (1.0, 1.0, 1.0))
    raw = gzip.decompress(path.read_bytes())
    two = tmp_path / "two.nii.gz"
    two.write_bytes(gzip.compress(raw[:500]) + gzip.compress(raw[500:]))
    check_image_complete(two)
    two.write_bytes(gzip.compress(raw[:500]) + gzip.compress(raw[500:-1]))
    with pytest.raises(InputError, match="the header promises"):
        check_image_complete(two)


def test_detached_headers_are_refused_for_writing(tmp_path):
    """A .mhd header names its voxel file: renamed into place, it named the temporary one."""
    for ext in (".mhd", ".nhdr"):
        with pytest.raises(InputError, match=r"write \.mha or \.nrrd"):
            write_volume(tmp_path / f"v{ext}", np.zeros((4, 4, 4), np.int16), (1.0, 1.0, 1.0))
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "code, words",
    [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "read-only file system"),
     (errno.EFBIG, "file-size limit")],
)  # fmt: skip
def test_text_writes_name_the_file_and_the_cause(tmp_path, monkeypatch, code, words):
    path = write_text_atomic(tmp_path / "a.json", "{}\n")

    def fail(self, data):
        raise OSError(code, os.strerror(code), str(self))

    monkeypatch.setattr(Path, "write_bytes", fail)
    with pytest.raises(InputError) as info:
        write_text_atomic(path, "[]\n")
    assert str(info.value).startswith(f"{path}: cannot write (") and words in str(info.value)
    assert path.read_text() == "{}\n" and os.listdir(tmp_path) == ["a.json"]


def test_round_trip_after_the_check_keeps_the_voxels(tmp_path):
    array = np.arange(24 * 20 * 12, dtype=np.float32).reshape(24, 20, 12) - 1000.5
    for ext in (".nii.gz", ".nrrd", ".mha"):
        back = read_volume(write_volume(tmp_path / f"v{ext}", array, (1.0, 1.0, 1.0)))
        np.testing.assert_array_equal(back.array, array)
