"""Safety rules and behaviour of pyonnx.io.external_data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pyonnx.errors import DecodeError, InvalidArgument
from pyonnx.io.external_data import (
    ALIGNMENT,
    MMAP_THRESHOLD,
    load_external,
    model_dirs,
    write_external,
)

NAME = "conv1.weight"


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    (d / "w.bin").write_bytes(bytes(range(64)))
    return d


def _rejects(entries: dict[str, str], base: Path, *words: str, nbytes: int | None = None, **kw) -> str:
    with pytest.raises(DecodeError) as info:
        load_external(entries, base, NAME, nbytes, **kw)
    msg = str(info.value)
    assert NAME in msg
    for w in words:
        assert w in msg, msg
    return msg


# --- rejections --------------------------------------------------------------------------------


def test_absolute_path(model_dir: Path) -> None:
    _rejects({"location": str(model_dir / "w.bin")}, model_dir, "absolute")


@pytest.mark.parametrize("loc", ["C:\\w.bin", "c:w.bin", "\\\\server\\share\\w.bin", "//server/share/w.bin", "\\w.bin"])
def test_windows_absolute_forms(model_dir: Path, loc: str) -> None:
    _rejects({"location": loc}, model_dir, "absolute")


def test_dotdot_at_start_escapes(model_dir: Path) -> None:
    (model_dir.parent / "secret.bin").write_bytes(b"x" * 8)
    _rejects({"location": "../secret.bin"}, model_dir, "outside")


def test_dotdot_in_middle_escapes(model_dir: Path) -> None:
    (model_dir / "data").mkdir()
    (model_dir.parent / "secret.bin").write_bytes(b"x" * 8)
    _rejects({"location": "data/../../secret.bin"}, model_dir, "outside")


def test_symlink_pointing_out(model_dir: Path) -> None:
    target = model_dir.parent / "secret.bin"
    target.write_bytes(b"x" * 8)
    (model_dir / "link.bin").symlink_to(target)
    _rejects({"location": "link.bin"}, model_dir, "outside", "symlink")


def test_symlinked_folder_pointing_out(model_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "w.bin").write_bytes(b"x" * 8)
    (model_dir / "sub").symlink_to(outside, target_is_directory=True)
    _rejects({"location": "sub/w.bin"}, model_dir, "outside")


def test_hardlink_refused_by_default(model_dir: Path) -> None:
    os.link(model_dir / "w.bin", model_dir / "alias.bin")
    _rejects({"location": "w.bin"}, model_dir, "hard link", "allow_hardlinks")


def test_hardlink_accepted_with_opt_in(model_dir: Path) -> None:
    os.link(model_dir / "w.bin", model_dir / "alias.bin")
    got = load_external({"location": "alias.bin"}, model_dir, NAME, 64, allow_hardlinks=True)
    assert bytes(got) == bytes(range(64))


def test_unknown_key(model_dir: Path) -> None:
    _rejects({"location": "w.bin", "basepath": "/etc"}, model_dir, "'basepath'")


def test_missing_location(model_dir: Path) -> None:
    _rejects({"offset": "0"}, model_dir, "location")


def test_empty_location(model_dir: Path) -> None:
    _rejects({"location": ""}, model_dir, "empty")


@pytest.mark.parametrize("value", ["-1", "-0"])
def test_negative_offset(model_dir: Path, value: str) -> None:
    _rejects({"location": "w.bin", "offset": value}, model_dir, "offset", value)


@pytest.mark.parametrize("value", ["abc", "1.5", "", " 4", "+4", "1_0", "0x10", "٣"])
def test_non_integer_length(model_dir: Path, value: str) -> None:
    _rejects({"location": "w.bin", "length": value}, model_dir, "length")


def test_range_past_eof(model_dir: Path) -> None:
    _rejects({"location": "w.bin", "offset": "60", "length": "8"}, model_dir, "68", "64 bytes")


def test_offset_past_eof(model_dir: Path) -> None:
    _rejects({"location": "w.bin", "offset": "65"}, model_dir, "offset 65")


def test_size_mismatch(model_dir: Path) -> None:
    _rejects({"location": "w.bin", "offset": "0", "length": "16"}, model_dir, "16", "12", nbytes=12)


def test_size_mismatch_when_length_absent(model_dir: Path) -> None:
    _rejects({"location": "w.bin", "offset": "8"}, model_dir, "56", "64", nbytes=64)


def test_missing_file(model_dir: Path) -> None:
    _rejects({"location": "nope.bin"}, model_dir, "not found", "nope.bin")


def test_directory_is_not_a_data_file(model_dir: Path) -> None:
    (model_dir / "data").mkdir()
    _rejects({"location": "data"}, model_dir, "not a regular file")


def test_fifo_is_not_a_data_file(model_dir: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    os.mkfifo(model_dir / "pipe")
    _rejects({"location": "pipe"}, model_dir, "not a regular file")


# --- accepted cases ----------------------------------------------------------------------------


def test_plain_region(model_dir: Path) -> None:
    got = load_external(
        {"location": "w.bin", "offset": "4", "length": "8", "checksum": "abc"}, model_dir, NAME, 8
    )
    assert isinstance(got, np.ndarray) and got.dtype == np.uint8
    assert bytes(got) == bytes(range(4, 12))
    assert not got.flags.writeable


def test_length_absent_means_rest_of_file(model_dir: Path) -> None:
    got = load_external({"location": "w.bin", "offset": "60"}, model_dir, NAME, None)
    assert bytes(got) == bytes([60, 61, 62, 63])


def test_dotdot_staying_inside(model_dir: Path) -> None:
    (model_dir / "data").mkdir()
    got = load_external({"location": "data/../w.bin"}, model_dir, NAME, 64)
    assert bytes(got) == bytes(range(64))


def test_symlink_staying_inside(model_dir: Path) -> None:
    (model_dir / "data").mkdir()
    (model_dir / "data" / "link.bin").symlink_to(model_dir / "w.bin")
    assert len(load_external({"location": "data/link.bin"}, model_dir, NAME, 64)) == 64


@pytest.mark.parametrize("offset", ["0", "64"])
def test_empty_region(model_dir: Path, offset: str) -> None:
    got = load_external({"location": "w.bin", "offset": offset, "length": "0"}, model_dir, NAME, 0)
    assert got.shape == (0,) and got.dtype == np.uint8


def test_empty_file(model_dir: Path) -> None:
    (model_dir / "empty.bin").write_bytes(b"")
    assert load_external({"location": "empty.bin"}, model_dir, NAME, 0).size == 0


def test_huggingface_blobs_layout(tmp_path: Path) -> None:
    """snapshots/<rev>/{model.onnx, model.onnx_data} are both symlinks into blobs/."""
    repo = tmp_path / "models--org--name"
    blobs = repo / "blobs"
    snap = repo / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    (blobs / "1111").write_bytes(b"model bytes")
    (blobs / "2222").write_bytes(bytes(range(32)))
    (snap / "model.onnx").symlink_to("../../blobs/1111")
    (snap / "model.onnx_data").symlink_to("../../blobs/2222")

    base, trusted = model_dirs(snap / "model.onnx")
    assert Path(base) == snap and Path(trusted) == blobs.resolve()
    got = load_external(
        {"location": "model.onnx_data", "length": "32"}, base, NAME, 32, trusted_dir=trusted
    )
    assert bytes(got) == bytes(range(32))
    # without the model's real folder the data really lies outside the snapshot folder
    _rejects({"location": "model.onnx_data"}, snap, "outside")


def test_huggingface_layout_still_refuses_escape(tmp_path: Path) -> None:
    blobs = tmp_path / "repo" / "blobs"
    snap = tmp_path / "repo" / "snapshots" / "r"
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    (blobs / "m").write_bytes(b"m")
    (snap / "model.onnx").symlink_to(blobs / "m")
    (tmp_path / "secret").write_bytes(b"s" * 4)
    (snap / "evil").symlink_to(tmp_path / "secret")
    base, trusted = model_dirs(snap / "model.onnx")
    _rejects({"location": "evil"}, Path(base), "outside", trusted_dir=trusted)


def test_large_region_is_memory_mapped(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    payload = rng.integers(0, 256, size=MMAP_THRESHOLD + 12345, dtype=np.uint8)
    offset = 1000  # not a page multiple, so the mapping must round down and slice
    (tmp_path / "big.bin").write_bytes(b"\x07" * offset + payload.tobytes() + b"tail")
    got = load_external(
        {"location": "big.bin", "offset": str(offset), "length": str(payload.size)},
        tmp_path, NAME, payload.size,
    )
    np.testing.assert_array_equal(got, payload)
    assert not got.flags.writeable and not got.flags.owndata
    import mmap as _mmap

    base = got.base
    while base is not None and not isinstance(base, _mmap.mmap):
        base = getattr(base, "base", None) if not isinstance(base, memoryview) else base.obj
    assert isinstance(base, _mmap.mmap)


def test_small_region_is_read(model_dir: Path) -> None:
    got = load_external({"location": "w.bin"}, model_dir, NAME, 64)
    assert got.flags.owndata  # a private copy, not a view of a mapping


def test_no_descriptor_left_open(model_dir: Path) -> None:
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.exists():
        pytest.skip("needs /proc")
    before = len(list(fd_dir.iterdir()))
    for _ in range(20):
        load_external({"location": "w.bin"}, model_dir, NAME, 64)
        with pytest.raises(DecodeError):
            load_external({"location": "w.bin", "length": "999"}, model_dir, NAME, None)
    assert len(list(fd_dir.iterdir())) == before


# --- writer ------------------------------------------------------------------------------------


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    arrays = [
        ("a", np.arange(10, dtype=np.float32)),
        ("b", np.zeros(0, dtype=np.int64)),
        ("c", np.arange(7, dtype=np.int8).tobytes()),
        ("d", memoryview(np.arange(3000, dtype=np.float64).tobytes())),
    ]
    entries = write_external(arrays, tmp_path, "weights/data.bin")
    assert [e["location"] for e in entries] == ["weights/data.bin"] * 4
    for (name, data), entry in zip(arrays, entries):
        assert int(entry["offset"]) % ALIGNMENT == 0
        want = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
        assert int(entry["length"]) == len(want)
        got = load_external(entry, tmp_path, name, len(want))
        assert bytes(got) == want


def test_write_appends_to_existing_file(tmp_path: Path) -> None:
    first = write_external([("a", b"12345")], tmp_path, "w.bin")
    second = write_external([("b", b"678")], tmp_path, "w.bin")
    assert first[0]["offset"] == "0" and second[0]["offset"] == str(ALIGNMENT)
    assert bytes(load_external(first[0], tmp_path, "a", 5)) == b"12345"
    assert bytes(load_external(second[0], tmp_path, "b", 3)) == b"678"


@pytest.mark.parametrize("loc", ["/tmp/x.bin", "../x.bin", "a/../../x.bin", "C:\\x.bin", ""])
def test_write_rejects_bad_location(tmp_path: Path, loc: str) -> None:
    base = tmp_path / "m"
    base.mkdir()
    with pytest.raises(InvalidArgument) as info:
        write_external([("t0", b"x")], base, loc)
    assert "t0" in str(info.value)


def test_write_rejects_symlink_out_and_hardlink(tmp_path: Path) -> None:
    base = tmp_path / "m"
    base.mkdir()
    (tmp_path / "victim").write_bytes(b"v")
    (base / "out.bin").symlink_to(tmp_path / "victim")
    with pytest.raises(InvalidArgument, match="outside"):
        write_external([("t0", b"x")], base, "out.bin")
    os.link(tmp_path / "victim", base / "hard.bin")
    with pytest.raises(InvalidArgument, match="hard links"):
        write_external([("t0", b"x")], base, "hard.bin")
    assert (tmp_path / "victim").read_bytes() == b"v"
