"""to_zarr (numpy, memory-mapped, dask local and distributed) and the CLI."""
import importlib.util
import io
import json
import math
from collections import Counter
import warnings

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

import progressive_j2k as pj  # noqa: E402
from progressive_j2k.cli import main  # noqa: E402
from progressive_j2k.convert import to_zarr  # noqa: E402
from progressive_j2k.zarr3 import ProgressiveJ2K  # noqa: E402

from stores import CountingStore  # noqa: E402


def test_to_zarr_numpy_and_levels(real, tmp_path):
    arr = real("mr2_uint16")
    z = to_zarr(arr, str(tmp_path / "a.zarr"), chunks=(256, 256))
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "a.zarr"))[:], arr)
    levels = pj.open_multiscale(z)
    assert [lv.shape for lv in levels][:3] == [(1024, 1024), (512, 512), (256, 256)]


def test_to_zarr_memmap_row_by_row(real, tmp_path):
    np.save(tmp_path / "v.npy", real("mni152_t1_uint8_3d"))
    src = np.load(tmp_path / "v.npy", mmap_mode="r")
    z = to_zarr(src, str(tmp_path / "v.zarr"))
    assert z.chunks == (197, 233, 189)  # 3-D transform: whole volume fits one 256^3 chunk
    np.testing.assert_array_equal(z[:], src)


def test_to_zarr_chooses_axes_like_encode(real, tmp_path, capsys):
    """A stack of two unlike CT frames is written frame by frame, as encode()
    codes it (smaller than the 3-D transform); a volume keeps 3-D."""
    stack = real("ect_uint16_2x512x512")
    z = to_zarr(stack, str(tmp_path / "s.zarr"))
    configuration = z.metadata.codecs[0].to_dict()["configuration"]
    assert configuration["axes"] == [1, 2] and z.chunks == (1, 512, 512)
    np.testing.assert_array_equal(z[:], stack)
    planes = pj.level_nbytes(z)[0]
    forced = to_zarr(stack, str(tmp_path / "f.zarr"), axes=(0, 1, 2))
    assert planes < pj.level_nbytes(forced)[0]
    volume = real("mni152_t1_uint8_3d")[60:124]
    z = to_zarr(volume, str(tmp_path / "v.zarr"))
    assert z.metadata.codecs[0].to_dict()["configuration"]["axes"] == [0, 1, 2]
    # RGBA (channels last, an opaque alpha): planes, all four in each chunk
    photo = real("chelsea")
    rgba = np.concatenate([photo, np.full(photo.shape[:2] + (1,), 255, np.uint8)], axis=2)
    z = to_zarr(rgba, str(tmp_path / "rgba.zarr"))
    assert z.metadata.codecs[0].to_dict()["configuration"]["axes"] == [0, 1]
    assert z.chunks == rgba.shape
    np.testing.assert_array_equal(z[:], rgba)
    # previews keep RGBA, and show H x W x 1 as gray
    imagecodecs = pytest.importorskip("imagecodecs")
    to_zarr(photo[..., :1], str(tmp_path / "gray1.zarr"))
    for name, shape in [("rgba", (75, 113, 4)), ("gray1", (75, 113))]:
        out = str(tmp_path / f"{name}.png")
        assert main(["preview", str(tmp_path / f"{name}.zarr"), "--level", "2", "-o", out]) == 0
        assert imagecodecs.png_decode(open(out, "rb").read()).shape == shape
    # four 16-bit bands (RGB and NIR): RGB, the fourth band no alpha
    bands = np.concatenate([photo.astype(np.uint16) * 200, real("camera")[:300, :451, None]
                            .astype(np.uint16) * 100], axis=2)
    to_zarr(bands, str(tmp_path / "bands.zarr"))
    out = str(tmp_path / "bands.png")
    assert main(["preview", str(tmp_path / "bands.zarr"), "--level", "2", "-o", out]) == 0
    assert "channel 3 left out" in capsys.readouterr().out
    picture = imagecodecs.png_decode(open(out, "rb").read())
    assert picture.shape == (75, 113, 3) and picture.std() > 20
    # ... also with an omero window per band (the fourth one's window was
    # broadcast against three channels, found by a review)
    windows = {"channels": [{"window": {"start": 0, "end": 20000 * (c + 1)}} for c in range(4)]}
    to_zarr(bands, str(tmp_path / "named.zarr"), dimension_names=("y", "x", "c"),
            attributes={"omero": windows})
    assert main(["preview", str(tmp_path / "named.zarr"), "--level", "2", "-o", out]) == 0
    windowed = imagecodecs.png_decode(open(out, "rb").read()).astype(float)
    assert windowed.shape == (75, 113, 3)
    # each channel through its own window: red brightest, blue darkest
    assert windowed[..., 0].mean() > windowed[..., 1].mean() > windowed[..., 2].mean()


def test_to_zarr_axes_choice_reads_a_small_block(real, tmp_path):
    """The choice reads at most 2 * LIKENESS_SAMPLES planes along the first
    axis, and works on array-likes that slice their first axis only."""
    class FirstAxisOnly:   # slices like a list of frames
        def __init__(self, arr):
            self.arr, self.shape, self.dtype, self.reads = arr, arr.shape, arr.dtype, []

        def __getitem__(self, key):
            if not isinstance(key, slice):
                raise TypeError("one slice only")
            self.reads.append(len(range(*key.indices(self.shape[0]))))
            return self.arr[key]

    stack = real("ect_uint16_2x512x512")
    frames = np.concatenate([stack] * 40)   # 80 frames, alternating two unlike ones
    source = FirstAxisOnly(frames)
    z = to_zarr(source, str(tmp_path / "s.zarr"), chunks=(1, 512, 512))
    assert z.metadata.codecs[0].to_dict()["configuration"]["axes"] == [1, 2]
    assert source.reads[0] == 32   # the choice's block, before the writes
    np.testing.assert_array_equal(z[:], frames)


def test_to_zarr_dask_distributed_two_processes(real, tmp_path):
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    arr = real("ct693_int16")
    data = da.from_array(arr, chunks=(100, 100))  # misaligned: to_zarr rechunks
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        z = to_zarr(data, str(tmp_path / "d.zarr"), chunks=(128, 128))
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "d.zarr"))[:], arr)
    assert z.chunks == (128, 128)


def test_xarray_reads_array_written_with_codec(real, tmp_path):
    xr = pytest.importorskip("xarray")
    arr = real("camera")
    root = zarr.open_group(str(tmp_path / "x.zarr"), mode="w")
    to_zarr(arr, root.store_path / "image", chunks=(128, 128), dimension_names=("y", "x"))
    ds = xr.open_zarr(str(tmp_path / "x.zarr"), consolidated=False)
    np.testing.assert_array_equal(ds["image"].values, arr)
    # a DataArray (lazy too) gives its dims as the dimension names and its
    # attrs as the attributes, unless given
    data = xr.DataArray(arr, dims=("row", "col"),
                        attrs={"units": "counts", "scale": np.float32(0.5), "window": np.arange(2)})
    for given, expected in ((None, ("row", "col")), (("y", "x"), ("y", "x"))):
        for source in (data, data.chunk(128)):
            z = to_zarr(source, root.store_path / "named", chunks=(128, 128), overwrite=True,
                        dimension_names=given, attributes=None if given is None else {"a": 1})
            assert z.metadata.dimension_names == expected
            assert z.attrs.asdict() == ({"units": "counts", "scale": 0.5, "window": [0, 1]}
                                        if given is None else {"a": 1})
            np.testing.assert_array_equal(z[:], arr)
    # attrs JSON cannot hold are left out, warned (the array written before is kept until then)
    dated = data.assign_attrs(when=np.datetime64("2020-01-01"), tag=b"x")
    with pytest.warns(UserWarning, match="attributes when, tag cannot be stored as JSON"):
        z = to_zarr(dated, root.store_path / "named", chunks=(128, 128), overwrite=True)
    assert set(z.attrs.asdict()) == {"units", "scale", "window"}


def test_cli_convert_info_preview(real, tmp_path, capsys):
    tifffile = pytest.importorskip("tifffile")
    pytest.importorskip("imagecodecs")
    arr = real("ct693_int16")
    tifffile.imwrite(tmp_path / "in.tif", arr)
    assert main(["convert", str(tmp_path / "in.tif"), str(tmp_path / "o.zarr"),
                 "--chunks", "256,256", "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "o.zarr"))[:], arr)
    main(["info", str(tmp_path / "o.zarr")])
    out = capsys.readouterr().out
    assert "compression ratio" in out and "(512, 512)" in out and "(16, 16)" in out
    assert main(["preview", str(tmp_path / "o.zarr"), "--level", "2", "-o",
                 str(tmp_path / "p.png")]) == 0
    import imagecodecs
    png = imagecodecs.png_decode((tmp_path / "p.png").read_bytes())
    assert png.shape == (128, 128) and png.dtype == np.uint8 and png.std() > 10


def test_cli_info_on_an_array_compressed_again(real, tmp_path, capsys):
    """info on an array with zarr's default zstd after the codec: every
    level needs the whole stored chunks, and it says why (no warning)."""
    camera = real("camera")
    z = zarr.create_array(str(tmp_path / "z.zarr"), shape=camera.shape, chunks=(256, 256),
                          dtype=camera.dtype, serializer=ProgressiveJ2K())
    z[:] = camera
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["info", str(tmp_path / "z.zarr")]) == 0
    out = capsys.readouterr().out
    stored = sum(f.stat().st_size for f in (tmp_path / "z.zarr" / "c").rglob("*") if f.is_file())
    assert f"stored {stored} bytes" in out and "compressed again after the codec (zstd)" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 7 and all(row[-2:] == [str(stored), "100.00"] for row in rows)


def test_cli_info_on_an_array_compressed_again_reads_a_sample_whole(real, tmp_path, capsys):
    """Where each header costs a whole chunk (zstd after the codec), info
    sizes every chunk from the store and reads HEADER_SAMPLE of them whole
    for their modes, and says so."""
    from zarr.storage import LocalStore
    from progressive_j2k.multiscale import HEADER_SAMPLE, stored_headers
    camera = real("camera")
    z = zarr.create_array(str(tmp_path / "z.zarr"), shape=camera.shape, chunks=(32, 32),
                          dtype=camera.dtype, serializer=ProgressiveJ2K())
    z[:] = camera
    files = [f for f in (tmp_path / "z.zarr" / "c").rglob("*") if f.is_file()]
    assert len(files) == 256 > HEADER_SAMPLE
    store = CountingStore(LocalStore(tmp_path / "z.zarr", read_only=True))
    reader, headers, count = stored_headers(zarr.open_array(store, mode="r"))
    assert count == 256 and len(headers) == HEADER_SAMPLE == len(store.chunk_reads())
    assert sum(reader.stored_sizes.values()) == sum(f.stat().st_size for f in files)
    assert main(["info", str(tmp_path / "z.zarr")]) == 0
    out = capsys.readouterr().out
    assert f"stored chunks: {HEADER_SAMPLE} lossless in a sample of {HEADER_SAMPLE} of the 256 " \
           f"read whole" in out
    assert f"stored {sum(f.stat().st_size for f in files)} bytes of chunk data;" in out


def test_cli_info_on_a_sparse_array_rates_the_stored_chunks(real, tmp_path, capsys):
    """info on an array with chunks never written: their count, and the
    compression ratio of the chunks stored (not of the whole array's raw
    bytes over them); none for an empty array."""
    camera = real("camera")
    z = zarr.create_array(str(tmp_path / "s.zarr"), shape=camera.shape, chunks=(128, 128),
                          dtype=camera.dtype, serializer=ProgressiveJ2K(), compressors=None)
    z[:128, :128] = camera[:128, :128]
    assert main(["info", str(tmp_path / "s.zarr")]) == 0
    stored = (tmp_path / "s.zarr" / "c" / "0" / "0").stat().st_size
    out = capsys.readouterr().out
    assert f"stored {stored} bytes of chunk data in 1 of 16 chunks" in out
    assert f"ratio of the stored chunks {128 * 128 / stored:.2f}" in out
    zarr.create_array(str(tmp_path / "e.zarr"), shape=(64, 64), chunks=(32, 32), dtype="u1",
                      serializer=ProgressiveJ2K(), compressors=None)
    assert main(["info", str(tmp_path / "e.zarr")]) == 0
    assert "in 0 of 4 chunks" in capsys.readouterr().out


def test_cli_reads_tiled_tiffs_lazily_with_ome_pixel_sizes(real, tmp_path):
    """A tiled or compressed TIFF was read whole (a 6144^2 RGB slide: 343 MB
    peak against 166 MB now); it is read through a zarr view of its tiles.
    An OME-TIFF's axes and physical pixel sizes are kept as an OME-Zarr
    input's are (they were dropped)."""
    tifffile = pytest.importorskip("tifffile")
    from progressive_j2k._inputs import open_input

    rgb = real("immunohistochemistry")
    tifffile.imwrite(tmp_path / "s.ome.tif", rgb, photometric="rgb", tile=(128, 128),
                     compression="zlib", metadata={"axes": "YXS", "PhysicalSizeX": 0.25,
                                                   "PhysicalSizeY": 0.5, "PhysicalSizeXUnit": "µm",
                                                   "PhysicalSizeYUnit": "nm"})
    source, names, _ = open_input(str(tmp_path / "s.ome.tif"))
    assert isinstance(source, zarr.Array) and names == ["y", "x", "c"]
    assert main(["convert", str(tmp_path / "s.ome.tif"), str(tmp_path / "s.zarr"), "--quiet"]) == 0
    z = zarr.open_array(str(tmp_path / "s.zarr"))
    np.testing.assert_array_equal(z[:], rgb)
    assert z.metadata.dimension_names == ("y", "x", "c")
    level1 = pj.open_multiscale(z)[1]
    assert level1.scale == (1.0, 0.5, 1.0) and level1.units == ("nanometer", "micrometer", None)
    volume = real("mni152_t1_uint8_3d")[:40]
    tifffile.imwrite(tmp_path / "v.ome.tif", volume, compression="zlib",
                     metadata={"axes": "ZYX", "PhysicalSizeZ": 2.0, "PhysicalSizeY": 1.0,
                               "PhysicalSizeX": 1.0})
    assert main(["convert", str(tmp_path / "v.ome.tif"), str(tmp_path / "v.zarr"), "--quiet"]) == 0
    z = zarr.open_array(str(tmp_path / "v.zarr"))
    np.testing.assert_array_equal(z[:], volume)
    assert pj.open_multiscale(z)[0].scale == (2.0, 1.0, 1.0)
    # a size the OME-XML leaves out: unit spacing and no unit (none invented)
    tifffile.imwrite(tmp_path / "x.ome.tif", volume[0], compression="zlib",
                     metadata={"axes": "YX", "PhysicalSizeX": 0.5})
    _, names, carried = open_input(str(tmp_path / "x.ome.tif"))
    assert names == ["y", "x"] and carried["ome_level0"]["scale"] == [1.0, 0.5]
    assert [a.get("unit") for a in carried["ome_level0"]["axes"]] == [None, "micrometer"]
    # one compressed strip for the whole image: read once, whole (through a
    # zarr view every row of chunks decoded all of it again)
    tifffile.imwrite(tmp_path / "strip.tif", rgb, photometric="rgb", compression="zlib",
                     rowsperstrip=rgb.shape[0])
    source, _, _ = open_input(str(tmp_path / "strip.tif"))
    assert isinstance(source, np.ndarray)
    np.testing.assert_array_equal(source, rgb)
    tifffile.imwrite(tmp_path / "plain.tif", rgb, photometric="rgb", compression="zlib")
    source, names, carried = open_input(str(tmp_path / "plain.tif"))
    assert isinstance(source, zarr.Array) and names is None and carried == {}
    np.testing.assert_array_equal(source[:], rgb)


def test_cli_carries_imagej_and_centimetre_pixel_sizes_and_ome_channel_names(real, tmp_path):
    """Pixel sizes from ImageJ metadata (per its unit, z spacing too) and
    from resolution tags in centimetres reach ome_level0, and an OME-TIFF's
    channel names an omero block; tags in inches (a screen's 72 dpi,
    mostly) are left out, warned."""
    tifffile = pytest.importorskip("tifffile")
    camera, volume = real("camera"), real("mni152_t1_uint8_3d")[90:94]
    tifffile.imwrite(tmp_path / "cm.tif", camera, resolution=(40000, 40000),
                     resolutionunit="CENTIMETER")
    tifffile.imwrite(tmp_path / "ij.tif", volume, imagej=True, resolution=(4, 4),
                     metadata={"spacing": 2.0, "unit": "micron", "axes": "ZYX"})
    tifffile.imwrite(tmp_path / "ijt.tif", volume, imagej=True, resolution=(4, 4),
                     metadata={"finterval": 30.0, "unit": "micron", "axes": "TYX"})
    tifffile.imwrite(tmp_path / "ijtp.tif", volume, imagej=True,   # time without space
                     metadata={"finterval": 2.0, "tunit": "min", "unit": "pixel", "axes": "TYX"})
    tifffile.imwrite(tmp_path / "dpi.tif", camera, resolution=(72, 72), resolutionunit="INCH")
    rgb = np.moveaxis(real("astronaut"), -1, 0)
    tifffile.imwrite(tmp_path / "c.ome.tif", rgb, metadata={
        "axes": "CYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,
        "Channel": {"Name": ["Red", "Green", "Blue"]}})
    expected = {"cm": (("y", "x"), [0.25, 0.25]), "ij": (("z", "y", "x"), [2.0, 0.25, 0.25]),
                "ijt": (("t", "y", "x"), [30.0, 0.25, 0.25]),   # ImageJ's frame interval
                "ijtp": (("t", "y", "x"), [2.0, 1.0, 1.0]),
                "c.ome": (("c", "y", "x"), [1.0, 0.5, 0.5])}
    for name, (names, scale) in expected.items():
        out = str(tmp_path / f"{name}.zarr")
        assert main(["convert", str(tmp_path / f"{name}.tif"), out, "--quiet"]) == 0
        z = zarr.open_array(out)
        assert z.metadata.dimension_names == names
        physical = z.attrs["ome_level0"]
        assert physical["scale"] == scale
        assert [a.get("unit") for a in physical["axes"] if a["type"] == "space"] == [
            "micrometer"] * (len(names) - (name in ("c.ome", "ijt"))) if name != "ijtp" else [
            None, None]
        assert [a.get("unit") for a in physical["axes"] if a["type"] == "time"] == {
            "ijt": ["second"], "ijtp": ["minute"]}.get(name, [])
    assert zarr.open_array(str(tmp_path / "c.ome.zarr")).attrs["omero"] == {
        "channels": [{"label": "Red"}, {"label": "Green"}, {"label": "Blue"}]}
    # one OME channel for the three samples of an RGB image: no label per channel
    tifffile.imwrite(tmp_path / "rgb.ome.tif", real("astronaut"), photometric="rgb",
                     metadata={"axes": "YXS", "Channel": {"Name": "RGB"}})
    assert main(["convert", str(tmp_path / "rgb.ome.tif"), str(tmp_path / "rgb.zarr"),
                 "--quiet"]) == 0
    assert "omero" not in zarr.open_array(str(tmp_path / "rgb.zarr")).attrs
    with pytest.warns(UserWarning, match="72 pixels per inch .* is not carried"):
        assert main(["convert", str(tmp_path / "dpi.tif"), str(tmp_path / "d.zarr"),
                     "--quiet"]) == 0
    assert "ome_level0" not in zarr.open_array(str(tmp_path / "d.zarr")).attrs


def test_cli_reads_fiji_units_and_says_what_export_leaves_out(real, tmp_path, capsys):
    """What an imaging review found: Fiji writes micrometres as the escaped
    text "\\u00B5m" (carried as that, not a unit, so export left the pixel
    size out); ImageJ's "pixel" is an uncalibrated image, no unit; inches
    and tifffile's millimetre resolution unit are lengths; one named
    channel keeps its name; export says when it cannot write a pixel size;
    a TIFF without images and float16 data are refused for what they are."""
    tifffile = pytest.importorskip("tifffile")
    camera, volume = real("camera"), real("anatomical_int16_3d")
    tifffile.imwrite(tmp_path / "fiji.tif", volume, imagej=True, resolution=(4, 4),
                     metadata={"spacing": 2.5, "unit": "\\u00B5m", "axes": "ZYX"})
    tifffile.imwrite(tmp_path / "pixel.tif", camera, imagej=True, resolution=(4, 4),
                     metadata={"unit": "pixel"})
    tifffile.imwrite(tmp_path / "inch.tif", camera, imagej=True, resolution=(4, 4),
                     metadata={"unit": "inch"})
    tifffile.imwrite(tmp_path / "mm.tif", camera, resolution=(4, 4), resolutionunit="MILLIMETER")
    tifffile.imwrite(tmp_path / "one.ome.tif", camera,
                     metadata={"axes": "YX", "Channel": {"Name": ["DAPI"]}})
    tifffile.imwrite(tmp_path / "halfx.ome.tif", camera, metadata={"axes": "YX",
                                                                   "PhysicalSizeX": 0.3})
    expected = {"fiji": ([2.5, 0.25, 0.25], ["micrometer"] * 3), "pixel": (None, None),
                "inch": ([0.25, 0.25], ["inch"] * 2), "mm": ([250.0, 250.0], ["micrometer"] * 2)}
    for name, (scale, units) in expected.items():
        out = str(tmp_path / f"{name}.zarr")
        assert main(["convert", str(tmp_path / f"{name}.tif"), out, "--quiet"]) == 0
        physical = zarr.open_array(out).attrs.get("ome_level0")
        if scale is None:
            assert physical is None
        else:
            assert physical["scale"] == scale and [a.get("unit") for a in physical["axes"]] == units
    assert main(["convert", str(tmp_path / "one.ome.tif"), str(tmp_path / "one.zarr"),
                 "--quiet"]) == 0
    assert zarr.open_array(str(tmp_path / "one.zarr")).attrs["omero"] == {
        "channels": [{"label": "DAPI"}]}
    # an inch pixel size exported: OME-XML's "in", TIFF's pixels per centimetre
    assert main(["export", str(tmp_path / "inch.zarr"), str(tmp_path / "inch.ome.tif")]) == 0
    with tifffile.TiffFile(tmp_path / "inch.ome.tif") as tif:
        assert 'PhysicalSizeXUnit="in"' in tif.ome_metadata
        assert tif.pages.first.tags["XResolution"].value == (200, 127)   # 1 / 0.635 cm
    assert main(["convert", str(tmp_path / "halfx.ome.tif"), str(tmp_path / "halfx.zarr"),
                 "--quiet"]) == 0
    with pytest.warns(UserWarning, match="pixel size is not written: .* None and 'micrometer'"):
        assert main(["export", str(tmp_path / "halfx.zarr"), str(tmp_path / "h.ome.tif")]) == 0
    (tmp_path / "empty.tif").write_bytes(b"II*\0\0\0\0\0")
    assert main(["convert", str(tmp_path / "empty.tif"), str(tmp_path / "e.zarr")]) == 2
    np.save(tmp_path / "half.npy", camera.astype(np.float16))
    assert main(["convert", str(tmp_path / "half.npy"), str(tmp_path / "f.zarr")]) == 2
    err = capsys.readouterr().err
    assert "holds no image" in err and "unsupported dtype float16" in err
    assert "Traceback" not in err


def test_cli_converts_zarr_from_a_url(real, tmp_path, capsys):
    """A zarr input named by URL is read through fsspec (an OME-Zarr group's
    level 0 too); file:// URLs are local paths; TIFF and .npy URLs are
    refused with the reason, and nothing at a URL is named as such."""
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")
    from http_server import RangeServer
    arr = real("camera")[:200, :300]
    zarr.create_array(str(tmp_path / "in.zarr"), data=arr, chunks=(100, 128))
    group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w")
    group.attrs["multiscales"] = [{"datasets": [{"path": "0"}]}]
    group.create_array("0", data=arr[::-1])
    np.save(tmp_path / "in.npy", arr)
    with RangeServer(tmp_path) as server:
        for name, expected in [("in.zarr", arr), ("ome.zarr", arr[::-1])]:
            out = str(tmp_path / f"from_{name}")
            assert main(["convert", f"{server.url}/{name}", out, "--quiet"]) == 0
            np.testing.assert_array_equal(zarr.open_array(out)[:], expected)
        capsys.readouterr()
        assert main(["convert", f"{server.url}/in.npy", str(tmp_path / "x.zarr")]) == 2
        assert "local files only" in capsys.readouterr().err
        assert main(["convert", f"{server.url}/absent.zarr", str(tmp_path / "y.zarr")]) == 2
        assert f"{server.url}/absent.zarr: no zarr array or group there" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists() and not (tmp_path / "y.zarr").exists()
    out = str(tmp_path / "from_file_url.zarr")
    assert main(["convert", (tmp_path / "in.npy").as_uri(), out, "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(out)[:], arr)


def test_cli_overwrite_keeps_the_old_array_until_the_new_one_is_whole(real, tmp_path, capsys,
                                                                    monkeypatch):
    """--overwrite writes beside the old array and swaps them at the end: an
    input that aliases the output (a URL served from it) is read before the
    old array goes, and a failed run leaves the old array as it was."""
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")
    from http_server import RangeServer
    arr = real("camera")[:256, :256]
    output = tmp_path / "v.zarr"
    zarr.create_array(str(output), data=arr, chunks=(64, 64))
    with RangeServer(tmp_path) as server:
        assert main(["convert", f"{server.url}/v.zarr", str(output), "--overwrite", "--quiet",
                     "--chunks", "128,128"]) == 0
    z = zarr.open_array(str(output))
    assert z.chunks == (128, 128) and isinstance(z.metadata.codecs[0], ProgressiveJ2K)
    np.testing.assert_array_equal(z[:], arr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.zarr"]   # nothing left beside it
    # a run that fails part-way: the new array is dropped, the old one kept
    import progressive_j2k.convert as convert_module
    write_region = convert_module._write_region

    def failing(z, *args, **kwargs):   # after the first region's chunks are written
        write_region(z, *args, **kwargs)
        assert any(p.name.endswith(".converting") for p in tmp_path.iterdir())
        raise KeyboardInterrupt

    monkeypatch.setattr(convert_module, "_write_region", failing)
    np.save(tmp_path / "other.npy", arr[::-1])
    capsys.readouterr()
    assert main(["convert", str(tmp_path / "other.npy"), str(output), "--overwrite", "--quiet",
                 "--chunks", "64,64"]) == 130
    assert "what was there is kept" in capsys.readouterr().err
    np.testing.assert_array_equal(zarr.open_array(str(output))[:], arr)
    assert zarr.open_array(str(output)).chunks == (128, 128)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.npy", "v.zarr"]
    monkeypatch.setattr(convert_module, "_write_region", write_region)
    # an option refused before anything is written: no removal to report
    assert main(["convert", str(tmp_path / "other.npy"), str(output), "--overwrite", "--quiet",
                 "--chunks", "0,0"]) == 2
    assert "removed" not in capsys.readouterr().err
    # interrupted between the swap's two renames: the old array is put back
    import os
    import progressive_j2k.cli as cli_module
    real_replace, calls = os.replace, []

    def interrupted(source, destination):   # (the swap's renames; zarr's own pass)
        names = (os.path.basename(source), os.path.basename(destination))
        if any(n.endswith((".converting", ".replaced")) for n in names):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
        real_replace(source, destination)

    monkeypatch.setattr(cli_module.os, "replace", interrupted)
    assert main(["convert", str(tmp_path / "other.npy"), str(output), "--overwrite", "--quiet",
                 "--chunks", "64,64"]) == 130
    monkeypatch.setattr(cli_module.os, "replace", real_replace)
    assert len(calls) == 3 and "what was there is kept" in capsys.readouterr().err
    np.testing.assert_array_equal(zarr.open_array(str(output))[:], arr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.npy", "v.zarr"]
    # interrupted while the old array is deleted: the new one is in place, and said so
    import shutil
    real_rmtree = shutil.rmtree

    def slow_delete(path, *args, **kwargs):
        if os.path.basename(path).endswith(".replaced"):
            raise KeyboardInterrupt
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(cli_module.shutil, "rmtree", slow_delete)
    assert main(["convert", str(tmp_path / "other.npy"), str(output), "--overwrite", "--quiet",
                 "--chunks", "64,64"]) == 130
    monkeypatch.setattr(cli_module.shutil, "rmtree", real_rmtree)
    assert "written; the old array, being deleted, is left in" in capsys.readouterr().err
    assert zarr.open_array(str(output)).chunks == (64, 64)
    leftover = [p for p in tmp_path.iterdir() if p.name.endswith(".replaced")]
    assert len(leftover) == 1
    real_rmtree(leftover[0])
    # the replaced array's permissions are kept (mkdtemp's are 0700)
    output.chmod(0o750)
    assert main(["convert", str(tmp_path / "other.npy"), str(output), "--overwrite",
                 "--quiet"]) == 0
    assert output.stat().st_mode & 0o777 == 0o750
    np.testing.assert_array_equal(zarr.open_array(str(output))[:], arr[::-1])
    # an array in a group: written beside the group, not listed in it meanwhile
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("0", data=arr, chunks=(64, 64))

    def watched(z, *args, **kwargs):
        assert sorted(zarr.open_group(str(tmp_path / "g.zarr")).array_keys()) == ["0"]
        assert any(p.name.endswith(".converting") for p in tmp_path.iterdir())
        return write_region(z, *args, **kwargs)

    monkeypatch.setattr(convert_module, "_write_region", watched)
    assert main(["convert", str(tmp_path / "other.npy"), str(tmp_path / "g.zarr" / "0"),
                 "--overwrite", "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "g.zarr" / "0"))[:], arr[::-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.zarr", "other.npy", "v.zarr"]


def test_file_urls_are_local_paths(real, tmp_path, capsys):
    """file: URLs (file:///p, file://localhost/p, file:/p, %-escapes) name
    local paths for convert's input and output, to_zarr and the readers;
    one on another host is refused."""
    arr = real("coins")[:64, :96]
    folder = tmp_path / "with space"
    folder.mkdir()
    np.save(folder / "in.npy", arr)
    url = (folder / "in.npy").as_uri()
    assert "%20" in url
    outputs = [(folder / "a.zarr").as_uri(), f"file://localhost{folder}/b.zarr",
               f"file:{folder}/c.zarr"]
    for output in outputs:
        assert main(["convert", url, output, "--quiet"]) == 0
    for name in "abc":
        np.testing.assert_array_equal(zarr.open_array(str(folder / f"{name}.zarr"))[:], arr)
    np.testing.assert_array_equal(pj.open_multiscale(outputs[0])[0][:], arr)
    assert main(["info", outputs[0]]) == 0
    assert main(["convert", outputs[1], str(tmp_path / "d.zarr"), "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "d.zarr"))[:], arr)
    to_zarr(arr, (tmp_path / "e f.zarr").as_uri())
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "e f.zarr"))[:], arr)
    capsys.readouterr()
    assert main(["convert", "file://elsewhere/x.zarr", str(tmp_path / "x.zarr")]) == 2
    assert "a file URL on another host (elsewhere)" in capsys.readouterr().err
    for bad, message in (("file://", "names no path"), (f"{outputs[0]}#1", "query or fragment"),
                         (f"{outputs[0]}?x=1", "query or fragment")):
        assert main(["convert", url, bad]) == 2
        assert message in capsys.readouterr().err
    assert main(["convert", f"file://LOCALHOST{folder}/in.npy", str(tmp_path / "h.zarr"),
                 "--quiet"]) == 0
    assert main(["info", url]) == 2   # (a .npy named by URL: said to be a file)
    assert "is a file, not a zarr array" in capsys.readouterr().err
    imagecodecs = pytest.importorskip("imagecodecs")
    assert main(["preview", outputs[0], "-o", (folder / "p.png").as_uri()]) == 0
    np.testing.assert_array_equal(imagecodecs.png_decode((folder / "p.png").read_bytes()), arr)
    assert main(["export", outputs[0], (folder / "e.tif").as_uri()]) == 0
    assert (folder / "e.tif").exists()


def test_url_schemes_need_their_filesystems(tmp_path, capsys):
    """A URL whose fsspec filesystem is not installed names its package; a
    scheme fsspec does not know is refused as such."""
    pytest.importorskip("fsspec")
    from progressive_j2k.errors import MissingDependencyError
    if importlib.util.find_spec("s3fs") is None:
        with pytest.raises(MissingDependencyError, match=r"needs s3fs .*pip install s3fs"):
            pj.open_multiscale("s3://bucket/a.zarr")
        assert main(["convert", "s3://bucket/a.zarr", str(tmp_path / "o.zarr")]) == 2
        err = capsys.readouterr().err
        assert "pip install s3fs" in err and "[cli]" not in err
    if importlib.util.find_spec("smbclient") is None:   # (a module of the package smbprotocol)
        with pytest.raises(MissingDependencyError, match=r"needs what fsspec names: .*"
                                                         r"smbprotocol.*no module smbclient\)$"):
            pj.open_multiscale("smb://host/share/a.zarr")
    with pytest.raises(ValueError, match="fsspec knows no nosuchscheme:// filesystem"):
        to_zarr(np.zeros((4, 4), np.uint8), "nosuchscheme://x/a.zarr")


def test_cli_converts_npy_and_ome_zarr(real, tmp_path):
    arr = real("chelsea")
    np.save(tmp_path / "c.npy", arr)
    for colour, expected, level2 in [("2", 2, (75, 113, 3)), ("auto", "auto", (75, 113, 3)),
                                     ("none", None, (75, 113, 1))]:
        out = str(tmp_path / f"c_{colour}.zarr")
        main(["convert", str(tmp_path / "c.npy"), out, "--colour-axis", colour, "--quiet"])
        z = zarr.open_array(out)
        np.testing.assert_array_equal(z[:], arr)
        assert z.metadata.codecs[0].to_dict()["configuration"]["colour_axis"] == expected
        assert pj.open_multiscale(z)[2].shape == level2   # none: 3-D, channels too
    # chunks that split the channels: "auto" resolves per chunk, to planes
    main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "s.zarr"), "--chunks", "128,128,1",
          "--quiet"])
    z = zarr.open_array(str(tmp_path / "s.zarr"))
    np.testing.assert_array_equal(z[:], arr)
    levels = pj.open_multiscale(z)
    np.testing.assert_array_equal(levels[0][...], arr)
    assert levels[1].shape == (150, 226, 3)
    with pytest.raises(SystemExit):
        main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "x.zarr"), "--colour-axis",
              "rgb"])
    # an OME-Zarr-like group: level 0 is datasets[0]
    group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w")
    group.attrs["multiscales"] = [{"datasets": [{"path": "0"}, {"path": "1"}]}]
    group.create_array("0", data=arr[..., 0])
    group.create_array("1", data=arr[::2, ::2, 0])
    main(["convert", str(tmp_path / "ome.zarr"), str(tmp_path / "p.zarr"), "--quiet",
          "--lossy", "--step", "2"])
    back = zarr.open_array(str(tmp_path / "p.zarr"))[:]
    assert back.shape == arr.shape[:2]
    assert np.abs(back.astype(float) - arr[..., 0]).mean() < 2
    # the OME axes' names (or a zarr v3 input's dimension names) are kept
    group.attrs["multiscales"] = [{"axes": [{"name": "y", "type": "space"},
                                            {"name": "x", "type": "space"}],
                                   "datasets": [{"path": "0"}, {"path": "1"}]}]
    main(["convert", str(tmp_path / "ome.zarr"), str(tmp_path / "q.zarr"), "--quiet"])
    q = zarr.open_array(str(tmp_path / "q.zarr"))
    assert q.metadata.dimension_names == ("y", "x")
    main(["convert", str(tmp_path / "q.zarr"), str(tmp_path / "r.zarr"), "--quiet"])
    assert zarr.open_array(str(tmp_path / "r.zarr")).metadata.dimension_names == ("y", "x")
    z = pj.to_zarr(arr[..., 0], str(tmp_path / "f.zarr"), fill_value=7)
    assert z.fill_value == 7
    with pytest.raises(ValueError, match="fill_value NaN is no uint8 value"):
        pj.to_zarr(arr[..., 0], str(tmp_path / "n.zarr"), fill_value=np.nan)
    assert not (tmp_path / "n.zarr").exists()


def test_to_zarr_refuses_before_creating_anything(real, tmp_path):
    """Float data without a lossy or tolerance knob is refused before the
    store holds anything (no empty array left behind)."""
    with pytest.raises(TypeError, match="integer data"):
        pj.to_zarr(real("tlrc_float32_3d"), str(tmp_path / "f.zarr"))
    assert not (tmp_path / "f.zarr").exists()
    # a misspelt option, a 0-d array: said in to_zarr's terms (the first
    # named normalise_options, the second "at least one axis must be transformed")
    with pytest.raises(TypeError, match=r"^to_zarr\(\) got an unexpected keyword argument 'qualty' "
                                        r"\(the codec's options: levels, mode, "):
        pj.to_zarr(real("camera"), str(tmp_path / "f.zarr"), qualty=3)
    with pytest.raises(ValueError, match="at least one axis, got a 0-d one"):
        pj.to_zarr(np.uint8(3), str(tmp_path / "f.zarr"))
    assert not (tmp_path / "f.zarr").exists()
    # NaN (not named nodata) or inf in a numpy array, found in its last chunk
    # only, once overwrite=True had deleted the old array
    field = real("tlrc_float32_3d")[0]
    old = pj.to_zarr(field, str(tmp_path / "g.zarr"), chunks=(16, 16), tolerance=1e-6)[:]
    gaps = field.copy()
    gaps[-1, -1] = np.nan
    with pytest.raises(ValueError, match="the data holds 1 NaN and 0 infinite values among its "
                                         "2322.*nodata="):
        pj.to_zarr(gaps, str(tmp_path / "g.zarr"), chunks=(16, 16), tolerance=1e-6, overwrite=True)
    gaps[-1, -2] = np.inf   # (NaN named as nodata: the infinity alone)
    with pytest.raises(ValueError, match="holds 0 NaN and 1 infinite values among"):
        pj.to_zarr(gaps, str(tmp_path / "g.zarr"), chunks=(16, 16), mode="lossy", psnr=50,
                   fill_value=np.nan, overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "g.zarr"))[:], old)


def test_dask_writes_take_several_write_units_per_task(real, tmp_path):
    """to_zarr's dask tasks hold whole write units (chunks, or shards),
    as many as TASK_BYTES holds along the last axes first: a task per
    256**2 chunk cost 1.4x the write's time; the stored array is the one a
    task per chunk writes."""
    from progressive_j2k.convert import TASK_BYTES, _task_units
    da = pytest.importorskip("dask.array")
    assert _task_units((0, 0), (8192, 8192), (256, 256), 1) == [4096, 8192]
    assert _task_units((0, 0), (8192, 8192), (256, 256), 2) == [2048, 8192]
    assert _task_units((100, 0), (300, 50), (256, 256), 8) == [256, 256]   # (an edge)
    assert math.prod(_task_units((0,) * 3, (900, 512, 512), (64, 64, 64), 4)) * 4 <= TASK_BYTES
    image = real("camera")
    one = pj.to_zarr(image, str(tmp_path / "numpy.zarr"), chunks=(64, 64))
    lazy = pj.to_zarr(da.from_array(image, chunks=(64, 64)), str(tmp_path / "dask.zarr"),
                      chunks=(64, 64))
    for key in ("c/0/0", "c/3/7", "c/7/7"):
        assert (tmp_path / "numpy.zarr" / key).read_bytes() == \
            (tmp_path / "dask.zarr" / key).read_bytes()
    np.testing.assert_array_equal(lazy[:], one[:])


def test_to_zarr_overwrite_keeps_the_old_array_until_the_new_one_is_whole(real, tmp_path):
    """to_zarr(overwrite=True) of a local array or group writes beside it
    and swaps them at the end, as convert --overwrite does: NaN found in a
    lazy input's last chunk left a half-written array that read as the fill
    value where the old one had been."""
    da = pytest.importorskip("dask.array")
    field = np.ascontiguousarray(real("tlrc_float32_3d")[0] * 1000)   # 54 x 43
    path = tmp_path / "g.zarr" / "t"
    zarr.open_group(str(tmp_path / "g.zarr"), mode="w").attrs["title"] = "kept"
    old = pj.to_zarr(field, str(path), chunks=(16, 16), tolerance=0.01)[:]
    gaps = field.copy()
    gaps[-1, -1] = np.nan
    with pytest.raises(pj.NonFiniteError):
        pj.to_zarr(da.from_array(gaps, chunks=(16, 16)), str(path), chunks=(16, 16),
                   tolerance=0.01, overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(str(path))[:], old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.zarr"]   # (no staging left)
    new = pj.to_zarr(da.from_array(field[::-1], chunks=(16, 16)), str(path), chunks=(32, 32),
                     tolerance=0.01, overwrite=True)
    assert new.chunks == (32, 32) and np.abs(new[:] - field[::-1]).max() <= 0.01
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.zarr"]
    group = zarr.open_group(str(tmp_path / "g.zarr"))
    assert list(group.array_keys()) == ["t"] and group.attrs["title"] == "kept"


def test_refused_arguments_leave_the_array_that_overwrite_would_replace(real, tmp_path):
    """What zarr refuses is refused before overwrite=True deletes anything:
    zarr checked fill values and dimension names only after the deletion."""
    coins = real("coins")
    path = str(tmp_path / "c.zarr")
    pj.to_zarr(coins, path, chunks=(128, 128))
    for kwargs, error, match in (
            ({"fill_value": 300}, ValueError, "not a value of uint8"),
            ({"fill_value": -1}, ValueError, "not a value of uint8"),
            ({"fill_value": np.float32(2.5)}, ValueError, "not a value of uint8"),   # (zarr cast it to 2)
            ({"dimension_names": ("y",)}, ValueError, "dimension"),
            ({"dimension_names": (1, 2)}, TypeError, "str")):
        with pytest.raises(error, match=match):
            pj.to_zarr(coins[:64], path, overwrite=True, **kwargs)
        np.testing.assert_array_equal(zarr.open_array(path)[:], coins)
    assert pj.to_zarr(coins, path, overwrite=True, fill_value=np.float64(7.0)).fill_value == 7
    with pytest.raises(ValueError, match="not a finite value of float32"):
        pj.to_zarr(coins.astype(np.float32), path, overwrite=True, tolerance=1, fill_value=1e39)
    xr = pytest.importorskip("xarray")
    with pytest.warns(UserWarning, match=r"dims \[0\] are not strings"):
        z = pj.to_zarr(xr.DataArray(coins, dims=(0, "x")), path, overwrite=True)
    assert z.metadata.dimension_names == ("0", "x")


def test_converting_onto_the_input_is_refused_and_leaves_it(real, tmp_path, capsys):
    """Overwriting the place the input is read from would delete it before
    it is read: refused, the input intact, for the same array or the group
    holding it (as paths, a file:// URL, a StorePath, a Group), a dask array
    or a level view reading it (or a dask array over that view), the same in-memory store (or its dict) and
    a .npy's own path; another place in the same group is fine.  Dask
    arrays hold their source in a layer or, with inline_array, in each task
    (optimised graphs too), or in xarray's lazy wrappers."""
    from zarr.storage import MemoryStore
    camera = real("camera")
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    source = group.create_array("raw", data=camera, chunks=(256, 256))
    for output in (str(tmp_path / "g.zarr" / "raw"), str(tmp_path / "g.zarr"), group,
                   str(tmp_path / "g.zarr" / "raw" / ".." / "raw")):
        with pytest.raises(ValueError, match="would delete the input being converted"):
            pj.to_zarr(source, output, overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "g.zarr" / "raw"))[:], camera)
    converted = pj.to_zarr(source, str(tmp_path / "g.zarr" / "j2k"), overwrite=True)
    np.testing.assert_array_equal(converted[:], camera)
    da = pytest.importorskip("dask.array")
    import dask
    from zarr.storage import LocalStore, StorePath
    raw = str(tmp_path / "g.zarr" / "raw")
    for data, output in ((da.from_zarr(raw) + 1, raw),   # a dask array reading it
                         (da.from_zarr(raw, inline_array=True)[::2], raw),   # (in its tasks)
                         (dask.optimize(da.from_zarr(raw, inline_array=True) + 1)[0], raw),
                         (da.from_array(pj.open_multiscale(converted)[1], inline_array=True,
                                        asarray=False), str(tmp_path / "g.zarr")),
                         (source, "file://" + raw), (source, StorePath(LocalStore(raw), "")),
                         (pj.open_multiscale(converted)[0], str(tmp_path / "g.zarr")),
                         # a level view's dask array (a source that no zarr array reads)
                         (pj.open_multiscale(converted)[1].to_dask(), str(tmp_path / "g.zarr"))):
        with pytest.raises(ValueError, match="would delete the input being converted"):
            pj.to_zarr(data, output, overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(raw)[:], camera)
    xr = pytest.importorskip("xarray")   # a variable xarray opened (its lazy wrappers)
    xr.Dataset({"v": (("y", "x"), camera)}).to_zarr(tmp_path / "x.zarr", consolidated=False)
    variable = xr.open_zarr(tmp_path / "x.zarr", consolidated=False)["v"]
    with pytest.raises(ValueError, match="would delete the input being converted"):
        pj.to_zarr(variable.data, str(tmp_path / "x.zarr" / "v"), overwrite=True)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "x.zarr" / "v"))[:], camera)
    memory = MemoryStore()
    in_memory = zarr.create_array(memory, name="a", data=camera)
    for output in (memory, MemoryStore(memory._store_dict), memory._store_dict):
        with pytest.raises(ValueError, match="would delete the input"):
            pj.to_zarr(in_memory, output, overwrite=True)
    pj.to_zarr(in_memory, MemoryStore(), overwrite=True)   # (another store)
    np.save(tmp_path / "c.npy", camera)
    for input_, output in ((tmp_path / "c.npy", tmp_path / "c.npy"), (tmp_path / "c.npy", tmp_path),
                           (tmp_path / "g.zarr", tmp_path / "g.zarr")):
        assert main(["convert", str(input_), str(output), "--overwrite", "--quiet"]) == 2
        assert "would delete the input being converted" in capsys.readouterr().err
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), camera)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "g.zarr" / "raw"))[:], camera)


def test_to_zarr_empty_array(tmp_path):
    z = to_zarr(np.zeros((0, 5), np.uint16), str(tmp_path / "e.zarr"), chunks=(4, 5))
    assert z.shape == (0, 5)
    # default chunks (1 along an empty axis), an empty axis between others
    for shape in ((0, 5), (5, 0, 3), (0,)):
        z = to_zarr(np.zeros(shape, np.uint8), str(tmp_path / "d.zarr"), overwrite=True)
        assert z.shape == shape and min(z.chunks) >= 1
        assert pj.open_multiscale(str(tmp_path / "d.zarr"))[0][...].shape == shape


def test_to_zarr_warns_of_chunks_far_longer_than_the_array(real, tmp_path):
    """Chunk lengths apply to the leading axes: (256, 256) on a stack of two
    frames is 256 frames deep, and says so; (1, 256, 256) does not.  On an
    image smaller than its chunks only the padding is pointed out.  A padded
    chunk of hundreds of MiB around a small array is refused before anything
    is written (a 10 x 10 image in chunks of 100000² was killed allocating
    10 GB; a (2, 3, 600, 600) image in chunks (256, 256) raised MemoryError
    for 44 GiB; 8 GiB with the default chunks now); lengths that look meant
    for the trailing axes are refused with the chunks they were likely meant
    as (a 4-band scene in chunks of (256, 256, 900) wrote 40x slower)."""
    stack = real("ect_uint16_2x512x512")
    with pytest.raises(ValueError, match=r"at least twice the array's length along axis 0 .*"
                                         r"padding\. Chunk lengths apply to the leading "
                                         r"dimensions.*e\.g\. chunks=\(1, 256, 256\)$"):
        to_zarr(stack, str(tmp_path / "a.zarr"), chunks=(256, 256))   # (refused: lengths
    assert not (tmp_path / "a.zarr").exists()                         # meant for y and x)
    with pytest.warns(UserWarning, match=r"along axis 0, 1 .*padding$"):   # (no advice)
        to_zarr(real("astronaut")[:200, :240], str(tmp_path / "s.zarr"), chunks=(1024, 1024))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = to_zarr(stack, str(tmp_path / "b.zarr"), chunks=(1, 256, 256))
    np.testing.assert_array_equal(z[:], stack)
    with pytest.raises(ValueError, match=r"padding, 9,537 MiB each: give chunks no longer "
                                         r"than the array \(-1 takes an axis whole\)$"):
        to_zarr(real("camera")[:10, :10], str(tmp_path / "h.zarr"), chunks=(100000, 100000))
    image = np.zeros((2, 3, 600, 600), np.uint16)
    with pytest.raises(ValueError, match=r"Chunk lengths apply to the leading dimensions.*"
                                         r"e\.g\. chunks=\(1, 3, 256, 256\)"):
        to_zarr(image, str(tmp_path / "m.zarr"), chunks=(256, 256))
    assert not (tmp_path / "h.zarr").exists() and not (tmp_path / "m.zarr").exists()
    # 4x the leading axis or more (60 slices in chunks (420, 420): 7x, 3.4x
    # slower and 4x the memory, found by a review)
    with pytest.raises(ValueError, match=r"e\.g\. chunks=\(\d+, 40, 40\)$"):
        to_zarr(np.zeros((9, 100, 100), np.uint16), str(tmp_path / "q.zarr"), chunks=(40, 40))
    # a leading chunk a few times its axis may be meant (found by a review:
    # these were refused, and the chunks named would have cut x into 64s)
    slices = real("mni152_t1_uint8_3d")[:30, :128, :128]
    for data, chunks in ((slices, (64,)), (stack, (4,)), (slices[:5, :20, :20], (10, 20)),
                         (slices[None, None], (1, 1, 64))):
        with pytest.warns(UserWarning, match=r"padding\. Chunk lengths apply to the leading"):
            z = to_zarr(data, str(tmp_path / "l.zarr"), chunks=chunks, overwrite=True)
        assert z.chunks[:len(chunks)] == chunks
        np.testing.assert_array_equal(z[...], data)


def test_cli_names_the_chunks_meant_as_its_flag(real, tmp_path, capsys):
    """The refusal of lengths meant for y and x names the chunks meant as
    the flag is typed (a 2-frame stack: --chunks 1,256,256)."""
    np.save(tmp_path / "s.npy", real("ect_uint16_2x512x512"))
    assert main(["convert", str(tmp_path / "s.npy"), str(tmp_path / "s.zarr"),
                 "--chunks", "256,256", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "e.g. --chunks 1,256,256" in err and "chunks=" not in err
    assert not (tmp_path / "s.zarr").exists()


def test_to_zarr_chunks_none_or_minus_one_take_an_axis_whole(real, tmp_path):
    """As zarr takes them (None raised a bare int() TypeError, -1 was
    refused), also for a channels-first colour axis, which keeps its colour
    transform as with chunks of 3 there."""
    coins = real("coins")   # 303 x 384
    for chunks in ((-1, 128), (None, 128), (np.int64(-1), 128)):
        z = to_zarr(coins, str(tmp_path / "c.zarr"), chunks=chunks, overwrite=True)
        assert z.chunks == (303, 128)
        np.testing.assert_array_equal(z[:], coins)
    planes = np.ascontiguousarray(np.moveaxis(real("astronaut"), -1, 0))   # 3 x 512 x 512
    configurations = []
    for chunks in ((3, 256, 256), (-1, 256, 256), (None, 256, 256)):
        z = to_zarr(planes, str(tmp_path / "p.zarr"), chunks=chunks, ratio=20, overwrite=True)
        configurations.append(_codec_configuration(z))
    assert configurations[0]["colour_axis"] == 0
    assert configurations[1] == configurations[0] == configurations[2]


def test_to_zarr_takes_nested_lists(tmp_path):
    """Array-likes without a shape are read as numpy would: float64 values
    with a tolerance; Python ints become int64, refused by name."""
    z = to_zarr([[1.5, 2.25], [3.0, 4.5]], str(tmp_path / "l.zarr"), tolerance=0.01)
    np.testing.assert_allclose(z[:], [[1.5, 2.25], [3.0, 4.5]], atol=0.01)
    with pytest.raises(TypeError, match="unsupported dtype int64"):
        to_zarr([[1, 2], [3, 4]], str(tmp_path / "i.zarr"))


def test_cli_layers_ratio_and_layer_preview(real, tmp_path, capsys):
    pytest.importorskip("imagecodecs")
    arr = real("camera")
    np.save(tmp_path / "c.npy", arr)
    assert main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "l.zarr"), "--chunks",
                 "256,256", "--layers", "3", "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "l.zarr"))[:], arr)
    import imagecodecs
    images = []
    for layer in ("0", None):
        extra = ["--layer", layer] if layer else []
        assert main(["preview", str(tmp_path / "l.zarr"), "-o", str(tmp_path / "p.png")]
                    + extra) == 0
        images.append(imagecodecs.png_decode((tmp_path / "p.png").read_bytes()))
    np.testing.assert_array_equal(images[1], arr)        # all layers: exact
    assert 0 < np.abs(images[0].astype(int) - arr).mean() < 20   # layer 0: coarser
    assert main(["preview", str(tmp_path / "l.zarr"), "-o", str(tmp_path / "p.png"),
                 "--layer", "5"]) == 2
    assert "error: --layer must be in 0..2 for this array, got 5" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "r.zarr"), "--chunks",
                 "256,256", "--ratio", "20", "--quiet"]) == 0
    z = zarr.open_array(str(tmp_path / "r.zarr"))
    assert z.metadata.codecs[0].to_dict()["configuration"]["ratio"] == 20.0
    assert 19 <= arr.nbytes / pj.level_nbytes(z)[0] <= 21   # every chunk within 5%
    assert np.abs(z[:].astype(int) - arr).mean() < 10
    # the same target as a rate: 0.4 bits per 8-bit sample is 20:1, chunk by chunk
    assert main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "b.zarr"), "--chunks",
                 "256,256", "--bits-per-sample", "0.4", "--quiet"]) == 0
    b = zarr.open_array(str(tmp_path / "b.zarr"))
    assert b.metadata.codecs[0].mode == "lossy" and b.metadata.codecs[0].bits_per_sample == 0.4
    assert pj.level_nbytes(b)[0] == pj.level_nbytes(z)[0]
    # --rdo / --no-rdo reach the codec's configuration (and so the encoder)
    for flag, value in (("--no-rdo", False), ("--rdo", True)):
        out = str(tmp_path / f"s{value}.zarr")
        assert main(["convert", str(tmp_path / "c.npy"), out, "--chunks", "256,256",
                     "--step", "4", flag, "--quiet"]) == 0
        z = zarr.open_array(out)
        assert z.metadata.codecs[0].to_dict()["configuration"]["rdo"] is value
        assert np.sqrt(np.mean((z[:].astype(float) - arr) ** 2)) < 4   # RMS ~ step / sqrt(12)
    plain, rdo = (pj.level_nbytes(zarr.open_array(str(tmp_path / f"s{v}.zarr")))[0]
                  for v in (False, True))
    assert rdo < plain     # RD-optimised quantisation codes fewer bits at one step


def test_cli_errors_are_messages_not_tracebacks(real, tmp_path, capsys):
    """Bad input ends with one line naming the problem and exit status 2: a
    float .npy without a lossy or tolerance option, a level beyond the
    array's, a zarr array not coded with progressive_j2k, a missing file."""
    pytest.importorskip("imagecodecs")
    field = np.ascontiguousarray(real("tlrc_float32_3d")[20])
    np.save(tmp_path / "f.npy", field)
    assert main(["convert", str(tmp_path / "f.npy"), str(tmp_path / "f.zarr"), "--quiet"]) == 2
    assert "--tolerance" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "f.npy"), str(tmp_path / "f.zarr"), "--quiet",
                 "--tolerance", "0.01"]) == 0
    assert main(["preview", str(tmp_path / "f.zarr"), "--level", "9", "-o",
                 str(tmp_path / "p.png")]) == 2
    assert "has levels 0 to" in capsys.readouterr().err
    zarr.create_array(str(tmp_path / "plain.zarr"), data=real("camera"))
    assert main(["info", str(tmp_path / "plain.zarr")]) == 2
    assert "not encoded with progressive_j2k" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing.zarr")]) == 2
    assert "error:" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "f.npy"), str(tmp_path / "f.zarr"), "--quiet",
                 "--tolerance", "0.01"]) == 2   # already there
    assert "(command line: --overwrite) to replace it" in capsys.readouterr().err
    # errors other than the options' own keep their message (and paths their names)
    bad = tmp_path / "step" / "bad.zarr"
    bad.mkdir(parents=True)
    (bad / "zarr.json").write_text("{not json")
    assert main(["convert", str(bad), str(tmp_path / "o.zarr"), "--quiet"]) == 2
    assert "Expecting property name" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "step" / "x.npy"), str(tmp_path / "o.zarr")]) == 2
    assert f"{tmp_path}/step/x.npy" in capsys.readouterr().err


def test_cli_refuses_a_directory_that_is_no_zarr_array(real, tmp_path, capsys):
    """A directory holding other files is no output: zarr wrote beside them,
    and with --overwrite deleted them all."""
    np.save(tmp_path / "c.npy", real("coins"))
    folder = tmp_path / "work"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("precious")
    for flags in ([], ["--overwrite"]):
        assert main(["convert", str(tmp_path / "c.npy"), str(folder), "--quiet", *flags]) == 2
        assert "holds no zarr array or group" in capsys.readouterr().err
        assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "sub"]
    with pytest.raises(FileExistsError, match="holds no zarr array or group"):
        pj.to_zarr(real("coins"), str(folder), overwrite=True)
    assert (folder / "notes.txt").read_text() == "precious"
    (tmp_path / "empty").mkdir()   # an empty directory, or a zarr array, is an output
    assert main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "empty"), "--quiet"]) == 0
    assert main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "empty"), "--quiet",
                 "--overwrite"]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "empty"))[:], real("coins"))


def test_cli_converts_the_tiff_series_asked_and_warns_of_others(real, tmp_path, capsys):
    """A TIFF holding several images (series): the first is converted with a
    warning naming the others (it was dropped silently), --series picks
    another (contiguous or compressed, with its own OME pixel sizes), and
    a series the file does not hold is refused with its list."""
    tifffile = pytest.importorskip("tifffile")
    camera, coins = real("camera"), real("coins")
    with tifffile.TiffWriter(tmp_path / "two.tif") as tif:
        tif.write(camera)
        tif.write(coins, compression="zlib")
    with pytest.warns(UserWarning, match=r"holds 2 images \(series 0: 512x512 uint8; "
                      r"1: 303x384 uint8\): series 0 is read; pick another with --series"):
        assert main(["convert", str(tmp_path / "two.tif"), str(tmp_path / "a.zarr"),
                     "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "a.zarr"))[:], camera)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["convert", str(tmp_path / "two.tif"), str(tmp_path / "b.zarr"), "--quiet",
                     "--series", "1"]) == 0
    assert not [w for w in caught if "holds 2 images" in str(w.message)]
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "b.zarr"))[:], coins)
    assert main(["convert", str(tmp_path / "two.tif"), str(tmp_path / "c.zarr"), "--quiet",
                 "--series", "2"]) == 2
    assert "series 2 is not one of its 2 (0: 512x512 uint8; 1: 303x384" in capsys.readouterr().err
    assert not (tmp_path / "c.zarr").exists()
    with tifffile.TiffWriter(tmp_path / "two.ome.tif", ome=True) as tif:
        tif.write(camera, metadata={"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
        tif.write(coins, metadata={"axes": "YX", "PhysicalSizeX": 2.0, "PhysicalSizeY": 3.0})
    assert main(["convert", str(tmp_path / "two.ome.tif"), str(tmp_path / "o.zarr"), "--quiet",
                 "--series", "1"]) == 0
    levels = pj.open_multiscale(str(tmp_path / "o.zarr"))
    assert levels[0].scale == (3.0, 2.0)
    np.testing.assert_array_equal(levels[0][...], coins)
    # an OME image without data in the file (tifffile makes no series of it)
    # ahead of the others: images are matched to series by their first IFD,
    # not by position (series 1 took image 1's sizes, the ghost's 99 for 0)
    from progressive_j2k._inputs import open_input
    ghost = ('<Image ID="Image:9" Name="ghost"><Pixels DimensionOrder="XYCZT" ID="Pixels:9" '
             'SizeC="1" SizeT="1" SizeX="4" SizeY="4" SizeZ="1" Type="uint8" '
             'PhysicalSizeX="99" PhysicalSizeY="99"><Channel ID="Channel:9:0" '
             'SamplesPerPixel="1"/></Pixels></Image>')
    xml = tifffile.tiffcomment(tmp_path / "two.ome.tif")
    tifffile.tiffcomment(tmp_path / "two.ome.tif", xml.replace("<Image ", ghost + "<Image ", 1).encode())
    for series, scale in ((0, [0.5, 0.5]), (1, [3.0, 2.0])):
        assert open_input(str(tmp_path / "two.ome.tif"), series)[2]["ome_level0"]["scale"] == scale
    np.save(tmp_path / "x.npy", coins)
    assert main(["convert", str(tmp_path / "x.npy"), str(tmp_path / "x.zarr"), "--quiet",
                 "--series", "0"]) == 2
    assert "a series is picked from a TIFF only" in capsys.readouterr().err


def test_cli_reads_tiffs_read_only_and_refuses_damaged_ones(real, tmp_path, capsys):
    """An archive's TIFF is opened read-only (a truncated uncompressed one
    was padded with zeros in place, and converted); a page chain cut short
    or a tile that does not decode is an error, and leaves no output."""
    tifffile = pytest.importorskip("tifffile")
    pytest.importorskip("imagecodecs")
    camera, volume = real("camera"), real("mni152_t1_uint8_3d")[90:100]
    tifffile.imwrite(tmp_path / "plain.tif", camera)
    data = (tmp_path / "plain.tif").read_bytes()
    (tmp_path / "short.tif").write_bytes(data[:100_000])
    assert main(["convert", str(tmp_path / "short.tif"), str(tmp_path / "s.zarr"), "--quiet"]) == 2
    assert "ends past the end of its file" in capsys.readouterr().err
    assert (tmp_path / "short.tif").stat().st_size == 100_000 and not (tmp_path / "s.zarr").exists()
    noise = np.random.default_rng(0).integers(0, 255, volume.shape, dtype=np.uint8)
    tifffile.imwrite(tmp_path / "stack.tif", noise, compression="zlib", tile=(64, 64))
    stack = (tmp_path / "stack.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(stack[:len(stack) // 3])   # (tifffile: fewer pages)
    assert main(["convert", str(tmp_path / "cut.tif"), str(tmp_path / "t.zarr"), "--quiet"]) == 2
    assert "is cut short" in capsys.readouterr().err
    # an OME-TIFF cut after its first plane: no next page, and its
    # description (written after the pixels) past the end; it converted as
    # one 2-D plane, exit 0
    tifffile.imwrite(tmp_path / "z.ome.tif", volume, metadata={"axes": "ZYX"})
    ome = (tmp_path / "z.ome.tif").read_bytes()
    (tmp_path / "zcut.ome.tif").write_bytes(ome[:len(ome) * 6 // 10])
    assert main(["convert", str(tmp_path / "zcut.ome.tif"), str(tmp_path / "z.zarr"),
                 "--quiet"]) == 2
    assert "is cut short" in capsys.readouterr().err and not (tmp_path / "z.zarr").exists()
    # cut inside its trailing OME-XML (every plane read, axes and sizes
    # lost), a byte into a later page's directory (a shorter stack), or an
    # ImageJ stack's directories cut (tifffile's struct and index errors
    # escaped as tracebacks): a second review's cuts, refused too
    small = volume[:, :96, :96]
    tifffile.imwrite(tmp_path / "x.ome.tif", small, metadata={"axes": "ZYX", "PhysicalSizeX": 0.5})
    tifffile.imwrite(tmp_path / "p.ome.tif", small, metadata={"axes": "ZYX"}, compression="zlib")
    tifffile.imwrite(tmp_path / "ij.tif", small, imagej=True, metadata={"axes": "ZYX"})
    with tifffile.TiffFile(tmp_path / "p.ome.tif") as tif:
        page_at = tif.pages[2].offset
    with tifffile.TiffFile(tmp_path / "ij.tif") as tif:
        ij_at = tif.pages[1].offset, tif.pages[2].offset
    cuts = {"x.ome.tif": -100, "p.ome.tif": page_at + 1, "ij.tif": ij_at[0] + 3}
    for name, end in cuts.items():
        whole = (tmp_path / name).read_bytes()
        (tmp_path / f"cut_{name}").write_bytes(whole[:end])
    (tmp_path / "cut2_ij.tif").write_bytes((tmp_path / "ij.tif").read_bytes()[:ij_at[1] + 149])
    for name in ("cut_x.ome.tif", "cut_p.ome.tif", "cut_ij.tif", "cut2_ij.tif"):
        assert main(["convert", str(tmp_path / name), str(tmp_path / "c.zarr"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "cut short" in err and "Traceback" not in err, name
        assert not (tmp_path / "c.zarr").exists()
    tifffile.imwrite(tmp_path / "tiled.tif", camera, compression="zlib", tile=(128, 128))
    with tifffile.TiffFile(tmp_path / "tiled.tif") as tif:
        offset, count = tif.pages.first.dataoffsets[3], tif.pages.first.databytecounts[3]
    damaged = bytearray((tmp_path / "tiled.tif").read_bytes())
    damaged[offset + 8:offset + count - 8] = bytes(count - 16)
    (tmp_path / "bad.tif").write_bytes(bytes(damaged))
    assert main(["convert", str(tmp_path / "bad.tif"), str(tmp_path / "b.zarr"), "--quiet",
                 "--chunks", "128,128"]) == 2
    err = capsys.readouterr().err
    assert "error: the input does not decode" in err and "Traceback" not in err
    assert not (tmp_path / "b.zarr").exists()   # (the unfinished output removed)


def test_cli_refuses_tiffs_whose_directories_lie(real, tmp_path, capsys):
    """Page directories with impossible or missing values (a fuzzing
    campaign's): a size or a strip's rows of 0 and an OME description
    without an axis's size raised from inside tifffile; strips listed short
    of the image's size or a tile without an offset read as zeros (exit 0);
    a length of 2**31 rows over 8 strips began a write of hours.  Each is
    refused with the reason; a tile with neither offset nor length, left
    out on purpose by a sparse writer (GDAL), still converts, as the fill."""
    import struct
    tifffile = pytest.importorskip("tifffile")
    pytest.importorskip("imagecodecs")
    image = real("camera")[:128, :160]

    def written(name, **options):
        tifffile.imwrite(tmp_path / name, image, photometric="minisblack", **options)
        return bytearray((tmp_path / name).read_bytes())

    def patched(data, tag, value, index=0):
        with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
            found = tif.pages.first.tags[tag]
            at, size = found.valueoffset, {3: 2, 4: 4, 16: 8}[int(found.dtype)]
        struct.pack_into({2: "<H", 4: "<I", 8: "<Q"}[size], data, at + index * size, value)
        return data

    def counted(data, tag, count):
        with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
            entry = tif.pages.first.tags[tag].offset
        struct.pack_into("<I", data, entry + 4, count)
        return data

    strips = {"rowsperstrip": 16, "compression": "zlib"}
    tiles = {"tile": (32, 32), "compression": "zlib"}
    cases = {
        "width0.tif": (patched(written("a.tif"), 256, 0), "page directories"),
        "rows0.tif": (patched(written("b.tif", **strips), 278, 0), "page directories"),
        "tile0.tif": (patched(written("c.tif", **tiles), 322, 0), "page directories"),
        "short.tif": (counted(written("d.tif", **strips), 279, 7), "lists 7 strips"),
        "tall.tif": (patched(written("e.tif", **strips), 257, 2**31), "needs 134217728"),
        "cut.tif": (written("f.tif", **strips)[:240], "lists 0 strips"),
        "no_offset.tif": (patched(written("g.tif", **tiles), 324, 0), "without an offset"),
        "no_size_t.ome.tif": (written("i.tif", metadata=None, description=(
            "<?xml version='1.0'?><OME xmlns='http://www.openmicroscopy.org/Schemas/OME/"
            "2016-06'><Image><Pixels DimensionOrder='XYZCT' Type='uint8' SizeX='160' "
            "SizeY='128'/></Image></OME>")), "KeyError"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(bytes(data))
        assert main(["convert", str(tmp_path / name), str(tmp_path / "o.zarr"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert reason in err and "Traceback" not in err, (name, err)
        assert not (tmp_path / "o.zarr").exists()
    # uncompressed pixels in one run are read from their offset and the
    # image's size, whatever the strips say (writers' slips): kept
    for tag, value in ((279, 0), (278, 0), (278, 1)):
        (tmp_path / "run.tif").write_bytes(bytes(patched(written("r.tif"), tag, value)))
        assert main(["convert", str(tmp_path / "run.tif"), str(tmp_path / "r.zarr"), "--quiet",
                     "--overwrite"]) == 0, (tag, value, capsys.readouterr().err)
        np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "r.zarr"))[...], image)
    sparse = patched(patched(written("h.tif", **tiles), 324, 0, 3), 325, 0, 3)
    (tmp_path / "sparse.tif").write_bytes(bytes(sparse))
    assert main(["convert", str(tmp_path / "sparse.tif"), str(tmp_path / "s.zarr"), "--quiet"]) == 0
    expected = image.copy()
    expected[:32, 96:128] = 0   # (tile 3, tifffile's fill)
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "s.zarr"))[...], expected)


def test_cli_tiff_checks_leave_complete_files_alone(real, tmp_path):
    """What the damage checks must not refuse, or do: a complete file whose
    last page points past its end (tifffile reads it), a multi-file
    OME-TIFF (a page in a companion file, beyond the first file's end); and
    a truncated uncompressed stack is refused without being grown (memory
    maps are read-only)."""
    import struct
    import uuid
    tifffile = pytest.importorskip("tifffile")
    camera = real("camera")
    tifffile.imwrite(tmp_path / "one.tif", camera)
    with tifffile.TiffFile(tmp_path / "one.tif") as tif:
        page = tif.pages.first
        pointer = page.offset + 2 + 12 * len(page.tags)   # (its next-IFD offset)
    data = bytearray((tmp_path / "one.tif").read_bytes())
    data[pointer:pointer + 4] = struct.pack("<I", len(data) + 1000)
    (tmp_path / "next.tif").write_bytes(bytes(data))
    assert main(["convert", str(tmp_path / "next.tif"), str(tmp_path / "n.zarr"), "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "n.zarr"))[:], camera)
    # and a private tag whose value lies past the end besides (a review's:
    # not the signs of a cut, which needs the description's tag)
    tifffile.imwrite(tmp_path / "tag.tif", camera,
                     extratags=[(65000, "s", 0, "vendor private blob " * 5, True)])
    with tifffile.TiffFile(tmp_path / "tag.tif") as tif:
        page = tif.pages.first
        tag_at, pointer = page.tags[65000].offset, page.offset + 2 + 12 * len(page.tags)
    data = bytearray((tmp_path / "tag.tif").read_bytes())
    data[tag_at + 8:tag_at + 12] = struct.pack("<I", len(data) + 1000)
    data[pointer:pointer + 4] = struct.pack("<I", len(data) + 5000)
    (tmp_path / "tag.tif").write_bytes(bytes(data))
    assert main(["convert", str(tmp_path / "tag.tif"), str(tmp_path / "g.zarr"), "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "g.zarr"))[:], camera)
    first, second = (f"urn:uuid:{uuid.uuid4()}" for _ in range(2))
    planes = camera[:64, :64], camera[64:128, :64]
    tifffile.imwrite(tmp_path / "a.ome.tif", planes[0], metadata=None, description=(
        f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/'
        f'Schemas/OME/2016-06" UUID="{first}"><Image ID="Image:0"><Pixels ID="Pixels:0" '
        f'DimensionOrder="XYZCT" Type="uint8" SizeX="64" SizeY="64" SizeZ="2" SizeC="1" '
        f'SizeT="1"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
        f'<TiffData FirstZ="0" IFD="0" PlaneCount="1"><UUID FileName="a.ome.tif">{first}'
        f'</UUID></TiffData><TiffData FirstZ="1" IFD="1" PlaneCount="1"><UUID '
        f'FileName="b.ome.tif">{second}</UUID></TiffData></Pixels></Image></OME>'))
    with tifffile.TiffWriter(tmp_path / "b.ome.tif") as tiff:   # (its IFD 1 far beyond a's end)
        tiff.write(np.zeros((512, 512), np.uint8), metadata=None, description=(
            f'<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/'
            f'Schemas/OME/2016-06" UUID="{second}"><BinaryOnly MetadataFile="a.ome.tif" '
            f'UUID="{first}"/></OME>'))
        tiff.write(planes[1], metadata=None)
    assert main(["convert", str(tmp_path / "a.ome.tif"), str(tmp_path / "m.zarr"), "--quiet"]) == 0
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "m.zarr"))[:], np.stack(planes))
    tifffile.imwrite(tmp_path / "stack.tif", real("mni152_t1_uint8_3d")[90:100])
    data = (tmp_path / "stack.tif").read_bytes()
    (tmp_path / "half.tif").write_bytes(data[:len(data) // 2])
    assert main(["convert", str(tmp_path / "half.tif"), str(tmp_path / "h.zarr"), "--quiet"]) == 2
    assert (tmp_path / "half.tif").stat().st_size == len(data) // 2


def test_cli_clean_up_leaves_what_was_there(real, tmp_path, capsys):
    """A failed convert into a zarr v2 group holding an array named c (the
    name of a v3 array's chunk directory): refused before anything is
    written, without overwrite, and the group kept whole."""
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", zarr_format=2)
    group.create_array("c", data=np.arange(10))
    np.save(tmp_path / "c.npy", real("coins"))
    assert main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "g.zarr"), "--quiet"]) == 2
    assert "a zarr (v2) array or group is already there" in capsys.readouterr().err
    np.testing.assert_array_equal(zarr.open_group(str(tmp_path / "g.zarr"))["c"][:],
                                  np.arange(10))
    with pytest.raises(FileExistsError, match=r"zarr \(v2\) array or group is already there"):
        pj.to_zarr(real("coins"), str(tmp_path / "g.zarr"))


def test_cli_interrupted_convert_leaves_no_output(real, tmp_path, monkeypatch, capsys):
    """SIGTERM (as Ctrl-C) mid-write: the finally blocks run, the unfinished
    array is removed, and the command says it was interrupted."""
    import os
    import signal
    from progressive_j2k import convert as convert_module
    np.save(tmp_path / "c.npy", real("camera"))
    pad_slab = convert_module._pad_slab   # (once per row of shards written)
    calls = []

    def terminated_after_one(*args, **kwargs):
        if calls:
            os.kill(os.getpid(), signal.SIGTERM)
        calls.append(1)
        return pad_slab(*args, **kwargs)

    monkeypatch.setattr(convert_module, "_pad_slab", terminated_after_one)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "i.zarr"), "--quiet",
                 "--chunks", "64,64", "--shards", "128,512"]) == 128 + signal.SIGTERM
    assert calls and "interrupted" in capsys.readouterr().err
    assert not (tmp_path / "i.zarr").exists()
    assert signal.getsignal(signal.SIGTERM) is before   # (the handler put back)


def test_cli_out_of_memory_is_an_error_without_output(real, tmp_path, monkeypatch, capsys):
    """An allocation that fails (chunks far longer than the data: numpy's
    MemoryError names the shape) is a one-line error, and the unfinished
    array is removed (it was a traceback)."""
    from progressive_j2k import convert as convert_module
    np.save(tmp_path / "c.npy", np.ascontiguousarray(real("camera")[:64, :64]))

    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 1.46 TiB for an array with shape (99999999999, 16)")

    monkeypatch.setattr(convert_module, "_pad_slab", no_memory)
    assert main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "m.zarr"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.endswith(
        "error: out of memory: Unable to allocate 1.46 TiB for an array with shape "
        "(99999999999, 16)\n")
    assert not (tmp_path / "m.zarr").exists()


def test_cli_takes_integer_lists_that_start_with_a_minus(real, tmp_path):
    """--axes -2,-1 and --chunks -1,64 (argparse took "-2,-1" for an
    option: "expected one argument"; only --axes=-2,-1 worked)."""
    np.save(tmp_path / "s.npy", np.ascontiguousarray(real("ect_uint16_2x512x512")[:, :64, :64]))
    assert main(["convert", str(tmp_path / "s.npy"), str(tmp_path / "s.zarr"), "--axes", "-2,-1",
                 "--chunks", "-1,64", "--quiet"]) == 0
    z = zarr.open_array(str(tmp_path / "s.zarr"))
    from progressive_j2k.multiscale import codec_options
    assert z.chunks == (2, 64, 64) and tuple(codec_options(z)["axes"]) == (1, 2)


@pytest.mark.parametrize("flags, message", [
    (["--ratio", "10", "--step", "2"],
     "choose one of --step, --ratio, --bits-per-sample and --psnr, got step and ratio"),
    (["--tolerance", "1", "--ratio", "10"], "--tolerance is a mode of its own: leave --ratio unset"),
    (["--lossy", "--tolerance", "1"], "--tolerance is a mode of its own: leave out --lossy"),
    (["--bits-per-sample", "9"], "--bits-per-sample must be at most 8 for uint8 data, got 9"),
    (["--psnr", "-3"], "--psnr targets must be positive numbers of dB, got [-3.0]"),
    (["--axes", "0,1,0,1,0"], "--axes must be 1 to 3 distinct axes, got (0, 0, 0, 1, 1)"),
    (["--colour-axis", "0"], "--colour-axis 0 must have length 3, has 64 (shape (64, 64))"),
    (["--rdo", "--tolerance", "1"], "--rdo applies to lossy coding only, not mode 'tolerance'"),
    (["--chunks", "0,4"], "--chunks must be up to 2 positive lengths, got (0, 4)"),
    (["--chunks", "32,32", "--shards", "48,64"],
     "--shards must be up to 2 multiples of the --chunks (32, 32), got (48, 64)"),
])
def test_cli_errors_name_the_flags(real, tmp_path, capsys, flags, message):
    np.save(tmp_path / "c.npy", np.ascontiguousarray(real("camera")[:64, :64]))
    assert main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "o.zarr"), "--quiet",
                 *flags]) == 2
    assert capsys.readouterr().err == f"progressive-j2k convert: error: {message}\n"
    assert not (tmp_path / "o.zarr").exists()


def test_edge_chunks_are_completed_from_their_data(real, tmp_path):
    """zarr completes edge chunks with the fill value, which the coarser
    levels would blend into the array's last rows and columns (a dark line
    along a bright image's border), as they do with the numcodecs codec,
    which never sees the fill value.  to_zarr completes them with their own
    mean instead, with numpy input and with dask input; the zarr v3 codec,
    given zarr's padding and the fill value, completes them alike and
    restores the fill value on decode (version 9), so a plain zarr write
    reads the same levels as to_zarr's."""
    da = pytest.importorskip("dask.array")
    image = np.ascontiguousarray(real("camera")[:500, :500])
    bright = (240 + image // 26).astype(np.uint8)            # 240..249, a slide's background
    for source in (image, bright):
        unchunked = {k: pj.decode(pj.encode(source, levels=6), level=k).astype(float)
                     for k in (1, 2, 3, 4)}
        plain = zarr.create_array(str(tmp_path / "plain.zarr"), shape=source.shape, chunks=(256, 256),
                                  dtype=source.dtype, serializer=ProgressiveJ2K(levels=6),
                                  compressors=None, fill_value=0, overwrite=True)
        plain[:] = source
        corner = (tmp_path / "plain.zarr" / "c" / "1" / "1").read_bytes()
        header = pj.read_header(corner)
        assert header.version == 9 and header.fill_extent == (244, 244) and header.fill_value == 0
        decoded = pj.decode(corner)
        np.testing.assert_array_equal(decoded[:244, :244], source[256:, 256:])
        assert (decoded[244:] == 0).all() and (decoded[:, 244:] == 0).all()
        v2 = zarr.create(store=str(tmp_path / "v2.zarr"), shape=source.shape, chunks=(256, 256),
                         dtype=source.dtype, compressor=pj.ProgressiveJ2K(levels=6), fill_value=0,
                         zarr_format=2, overwrite=True)
        v2[:] = source
        for data in (source, da.from_array(source, chunks=(100, 100))):
            z = to_zarr(data, str(tmp_path / "t.zarr"), chunks=(256, 256), levels=6, overwrite=True)
            assert z.shape == source.shape
            np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "t.zarr"))[:], source)
            corner = pj.decode((tmp_path / "t.zarr" / "c" / "1" / "1").read_bytes())
            np.testing.assert_array_equal(corner[:244, :244], source[256:, 256:])
            assert (corner[244:, :] == round(source[256:, 256:].mean())).all()
            ours, theirs = pj.open_multiscale(z), pj.open_multiscale(v2)
            for k in (1, 2, 3, 4):   # the last row and column against an unchunked encode
                def border(levels):
                    error = np.abs(levels[k][:].astype(float) - unchunked[k])
                    return error[-1].mean() + error[:, -1].mean()
                # camera: 1.4-9x smaller; the bright image 30-90x
                assert border(ours) < (0.1 if source is bright else 0.8) * border(theirs), k
                if source is bright:   # no dark line: within the data's range
                    assert ours[k][:].min() >= 235
                np.testing.assert_array_equal(pj.open_multiscale(plain)[k][:], ours[k][:])


def test_convert_names_what_it_reads_and_writes(real, tmp_path, capsys):
    """Mistakes a user makes, each answered with what to do: a file convert
    does not read (zarr's "No group found in store" before), a directory
    that holds no zarr metadata, an output named as an image (a zarr
    directory named out.png was written), --nodata on floats without
    --tolerance; --layer-metric psnr without --layers is warned of (it was
    taken silently; the Python options take it too)."""
    np.save(tmp_path / "f.npy", real("tlrc_float32_3d")[20])
    np.save(tmp_path / "c.npy", real("camera"))
    (tmp_path / "notes.md").write_text("# notes")
    (tmp_path / "empty").mkdir()
    for argv, message in (
            (["notes.md", "o.zarr"], "notes.md: not an input convert reads (a file): it reads "
                                     ".npy, TIFF (.tif, .tiff) and JPEG 2000 (.jp2"),
            (["empty", "o.zarr"], "a directory without zarr metadata"),
            (["c.npy", "out.png"], "convert writes a zarr array (a directory): name the output "
                                   "*.zarr, got"),
            (["f.npy", "o.zarr", "--nodata", "-999"], "cannot be coded losslessly: give --lossy")):
        assert main(["convert"] + [str(tmp_path / a) if a.endswith((".md", ".npy", ".zarr", ".png"))
                                   or a == "empty" else a for a in argv]) == 2
        assert message in capsys.readouterr().err, argv
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "o.zarr").exists()
    with pytest.warns(UserWarning, match="--layer-metric psnr says how --layers are counted: "
                                         "without --layers it changes nothing"):
        assert main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "o.zarr"),
                     "--layer-metric", "psnr", "--quiet"]) == 0


def test_to_zarr_stores_nan_as_nodata_for_xarray_to_read_as_nan(real, tmp_path, capsys):
    """With nodata=, to_zarr (numpy, dask) and convert store a float
    field's NaN as nodata (the encoder refuses NaN: the CLI's message
    pointed at --nodata, already given), and record xarray's _FillValue in
    the form xarray reads from zarr v3, so xarray.open_zarr reads those
    cells as NaN (it read -999; a plain-number _FillValue stopped it)."""
    xr = pytest.importorskip("xarray")
    da = pytest.importorskip("dask.array")
    field = real("tlrc_float32_3d")[:4].astype(np.float32) * 1000   # 4 x 54 x 43
    field[:, :10, :12] = np.nan
    for label, data, attributes in (("numpy", field, None),
                                    ("dask", da.from_array(field, (2, 30, 30)), None),
                                    ("given", field, {"_FillValue": -999.0, "units": "K"})):
        zarr.open_group(str(tmp_path / f"{label}.zarr"), mode="w")
        z = to_zarr(data, str(tmp_path / f"{label}.zarr" / "t"), tolerance=0.01, nodata=-999.0,
                    axes=(-2, -1), dimension_names=("time", "lat", "lon"), attributes=attributes)
        stored = z[:]
        assert (stored[:, :10, :12] == -999.0).all()
        finite = ~np.isnan(field)
        assert np.abs(stored[finite] - field[finite]).max() <= 0.01
        back = xr.open_zarr(str(tmp_path / f"{label}.zarr"), consolidated=False)["t"].values
        assert np.array_equal(np.isnan(back), ~finite), label
    assert back.dtype == np.float32 and xr.open_zarr(str(tmp_path / "given.zarr"),
                                                     consolidated=False)["t"].attrs["units"] == "K"
    np.save(tmp_path / "f.npy", field)
    assert main(["convert", str(tmp_path / "f.npy"), str(tmp_path / "f.zarr"), "--tolerance",
                 "0.01", "--nodata", "-999", "--axes=-2,-1", "--quiet"]) == 0
    assert (zarr.open_array(str(tmp_path / "f.zarr"))[:, :10, :12] == -999.0).all()
    with pytest.raises(ValueError, match=r"480 NaN and 0 infinite values among .*\(nodata="):
        to_zarr(field, str(tmp_path / "n.zarr"), tolerance=0.01, axes=(-2, -1))
    # convert reads its input lazily: the encoder finds them, and the CLI's
    # message names its flag (the Python API's named fill_value= and the
    # numcodecs codec, and its flag rewriting made "reduced --levels")
    damaged = field.copy()
    damaged[1, 5, 5] = np.inf
    np.save(tmp_path / "g.npy", damaged)
    for flags, said in (((), "(found: 120 NaN). For masked cells give --nodata nan (NaN cells "
                             "kept as NaN) or --nodata VALUE (e.g. -999: NaN cells stored as it); "
                             "either way they decode exactly and stay out of every reduced "
                             "level\n"),
                        (("--nodata", "-999"), "(found: 1 infinite); replace infinite "
                                               "values in the input\n")):
        assert main(["convert", str(tmp_path / "g.npy"), str(tmp_path / "g.zarr"), "--tolerance",
                     "0.01", "--axes=-2,-1", "--quiet", *flags]) == 2
        err = capsys.readouterr().err
        assert err.endswith("error: the input holds values the codec cannot take " + said), err
    # the numcodecs codec never sees the fill value: its own advice
    from progressive_j2k.codec import ProgressiveJ2K as V2Codec
    with pytest.raises(ValueError, match=r"120 NaN .*\(not with this codec, which never sees"):
        V2Codec(tolerance=0.01).encode(np.ascontiguousarray(field[0]))
    # a NaN _FillValue (xarray's float default) given with nodata: nodata's,
    # since NaN cells are stored as nodata
    masked = xr.DataArray(field, dims=("time", "lat", "lon"), attrs={"_FillValue": np.nan})
    zarr.open_group(str(tmp_path / "x.zarr"), mode="w")
    to_zarr(masked, str(tmp_path / "x.zarr" / "t"), tolerance=0.01, nodata=-999.0, axes=(-2, -1))
    back = xr.open_zarr(str(tmp_path / "x.zarr"), consolidated=False)["t"].values
    assert np.array_equal(np.isnan(back), np.isnan(field))
    # an integer array's: a whole number of its dtype, or refused before writing
    counts = np.arange(64, dtype=np.int16).reshape(8, 8)
    for bad in (np.inf, -999.5):   # (NaN: nodata, as for floats)
        with pytest.raises(ValueError, match=r"_FillValue .* is no int16 value"):
            to_zarr(counts, str(tmp_path / "i.zarr"), tolerance=2, nodata=-999,
                    attributes={"_FillValue": bad}, overwrite=True)
    z = to_zarr(counts, str(tmp_path / "i.zarr"), tolerance=2, nodata=-999, overwrite=True)
    assert z.attrs["_FillValue"] == -999


def test_to_zarr_holds_the_last_samples_of_edge_chunks_in_tolerance_mode(real, tmp_path):
    """In tolerance mode an edge chunk is completed by its last samples held
    (the mean of the last four in blocks of 32, for 32 samples, then their
    mean): a smooth field's last rows at coarse levels read 2 K off with the
    chunk's mean, about 0.35 K held, against the level of an unchunked encode."""
    y = np.linspace(-1, 1, 100)[:, None]
    x = np.linspace(0, 1, 200)[None]
    field = (258 + 30 * (1 - y ** 2) + np.sin(6 * x)).astype(np.float32)   # 258..288 K
    z = to_zarr(field, str(tmp_path / "f.zarr"), chunks=(64, 128), tolerance=0.01, levels=2)
    assert np.abs(z[:] - field).max() <= 0.01
    corner = pj.decode((tmp_path / "f.zarr" / "c" / "1" / "1").read_bytes())   # 36 x 72 of data
    held = field[96:100, 128:200].mean(axis=0)
    held = np.repeat([held[:32].mean(), held[32:64].mean(), held[64:].mean()], [32, 32, 8])
    assert np.abs(corner[36:64, :72] - held).max() <= 0.01 + 1e-4
    unchunked = pj.encode(field, tolerance=0.01, levels=2)
    levels = pj.open_multiscale(z)
    for k in (1, 2):
        last_row = np.abs(levels[k][-1].astype(float) - pj.decode(unchunked, level=k)[-1])
        assert last_row.mean() < 0.5, k
    # a real volume: every sample within the bound, padded on all three axes
    volume = real("tlrc_float32_3d")
    z = to_zarr(volume, str(tmp_path / "v.zarr"), chunks=(32, 32, 32), tolerance=1e-5)
    assert np.abs(z[:] - volume).max() <= 1e-5


def _codec_configuration(z) -> dict:
    """The stored configuration of z's progressive_j2k codec (also in shards)."""
    codecs = z.metadata.to_dict()["codecs"]
    while codecs[0]["name"] == "sharding_indexed":
        codecs = codecs[0]["configuration"]["codecs"]
    return codecs[0]["configuration"]


@pytest.mark.parametrize("shards", [None, (1024, 1024)])
def test_to_zarr_targets_hold_for_the_data_of_edge_chunks(real, tmp_path, shards):
    """A target counts every sample of a chunk, and to_zarr's padding costs
    almost no bytes and has almost no error: edge chunks coded with the
    array's targets spent a whole chunk's budget on their data (coffee at
    ratio=20 came out 12:1) and lost 10 log10(1 / fraction) dB (an 88 x 88
    corner at psnr=80: 66 dB).  Their targets are scaled to their data;
    zarr.json keeps the array's own."""
    image = np.ascontiguousarray(real("mr2_uint16")[:600, :600])
    z = to_zarr(image, str(tmp_path / "p.zarr"), chunks=(512, 512), psnr=80, shards=shards)
    decoded = z[:]
    for y in (0, 512):
        for x in (0, 512):
            block = (slice(y, y + 512), slice(x, x + 512))
            assert pj._metrics.psnr(decoded[block], image[block], 65535) >= 80, (y, x)
    assert _codec_configuration(zarr.open_array(str(tmp_path / "p.zarr")))["psnr"] == 80
    colour = real("coffee")   # 400 x 600 x 3
    for options in ({"ratio": 20}, {"bits_per_sample": 0.4}, {"ratio": 20, "layers": [80, 40]}):
        z = to_zarr(colour, str(tmp_path / "r.zarr"), chunks=(256, 256), shards=shards,
                    overwrite=True, **options)
        stored = sum(f.stat().st_size for f in (tmp_path / "r.zarr" / "c").rglob("*") if f.is_file())
        assert 20 / 1.05 <= colour.nbytes / stored <= 20 * 1.05, options
        np.testing.assert_array_equal(pj.open_multiscale(z)[0][:].shape, colour.shape)
        if shards is None and "layers" not in options:   # each chunk against its own data
            # (with three layers the smallest stream is 539 bytes, and the
            # 144 x 88 corner keeps EDGE_FLOORS of them: 17.7:1)
            for path in (tmp_path / "r.zarr" / "c").rglob("*"):
                if path.is_file():
                    y, x = (int(p) for p in path.relative_to(tmp_path / "r.zarr" / "c").parts[:2])
                    data = colour[256 * y:256 * (y + 1), 256 * x:256 * (x + 1)]
                    assert 20 / 1.05 <= data.nbytes / path.stat().st_size <= 20 * 1.05, (y, x)
    assert _codec_configuration(zarr.open_array(str(tmp_path / "r.zarr")))["ratio"] == 20


def test_thin_edge_chunks_keep_their_data(real, tmp_path):
    """One row past a chunk boundary is 1/256 of its chunk: scaled fully,
    its ratio target fell below the stream's header and flushes and zeroed
    the row (astronaut at 10:1: 16 dB against 38 inside).  The scaling stops
    at NEAR_FLOOR times that floor."""
    image = real("astronaut")                              # 512 x 512 x 3
    taller = np.concatenate([image, image[-1:]])           # 513 rows
    z = to_zarr(taller, str(tmp_path / "t.zarr"), chunks=(256, 256), ratio=10)
    decoded = z[:]
    assert pj._metrics.psnr(decoded[512:], taller[512:], 255) >= 30
    assert pj._metrics.psnr(decoded[:512], image, 255) >= 30
    for x in (0, 1):
        assert (tmp_path / "t.zarr" / "c" / "2" / str(x) / "0").stat().st_size < 1200


def test_edge_chunk_options_scale_only_the_targets():
    from progressive_j2k.convert import edge_chunk_options

    u8 = np.dtype(np.uint8)
    assert edge_chunk_options({"levels": 3, "step": 2.0, "layers": 3}, 0.25, u8) is None
    assert edge_chunk_options({"tolerance": 0.5}, 0.25, u8) is None
    scaled = edge_chunk_options({"ratio": 10, "layers": [80, 40], "levels": 3}, 0.25, u8)
    assert scaled == {"ratio": 40.0, "layers": (320.0, 160.0), "levels": 3}
    assert edge_chunk_options({"bits_per_sample": 2.0, "layers": 4}, 0.25, u8) == {
        "bits_per_sample": 0.5, "layers": 4}
    scaled = edge_chunk_options({"psnr": 40, "layers": [30, 35], "layer_metric": "psnr"}, 0.1, u8)
    assert scaled["psnr"] == pytest.approx(50) and scaled["layers"] == pytest.approx((40, 45))
    # a rate target is scaled to no ratio above the cap (the stream's floor), layers alike
    capped = edge_chunk_options({"ratio": 10, "layers": [80, 40]}, 1 / 256, u8, ratio_cap=50)
    assert capped == {"ratio": 50.0, "layers": (400.0, 200.0)}
    assert edge_chunk_options({"bits_per_sample": 4.0}, 1 / 256, u8, ratio_cap=50) == {
        "bits_per_sample": 8 / 50}
    assert edge_chunk_options({"ratio": 60}, 1 / 256, u8, ratio_cap=50) is None   # over it
    assert edge_chunk_options({"ratio": 60, "psnr": None, "layers": None}, 0.5, u8)["ratio"] == 120


def test_to_zarr_keeps_the_shape_when_writing_fails(real, tmp_path):
    """Edge chunks are written into an array of whole chunks, then cut to the
    data's shape; a source that fails part-way must not leave the padded
    shape behind."""
    image = np.ascontiguousarray(real("camera")[:300, :300])

    class Failing:
        shape, dtype = image.shape, image.dtype

        def __getitem__(self, key):
            if isinstance(key, slice) and key.start:
                raise OSError("source vanished")
            return image[key]

    with pytest.raises(OSError, match="vanished"):
        to_zarr(Failing(), str(tmp_path / "f.zarr"), chunks=(256, 256), axes=(0, 1))
    assert zarr.open_array(str(tmp_path / "f.zarr")).shape == (300, 300)


def test_cli_layer_targets_metric_and_info(real, tmp_path, capsys):
    """--layers takes a count or comma-separated targets, --layer-metric
    what they are; info shows the bytes a reader of layers 0..j needs."""
    arr = real("camera")
    np.save(tmp_path / "c.npy", arr)
    out = str(tmp_path / "t.zarr")
    assert main(["convert", str(tmp_path / "c.npy"), out, "--chunks", "256,256", "--ratio", "10",
                 "--layers", "80,40", "--quiet"]) == 0
    z = zarr.open_array(out)
    config = z.metadata.codecs[0].to_dict()["configuration"]
    assert config["layers"] == [80.0, 40.0] and config["layer_metric"] == "ratio"
    capsys.readouterr()
    assert main(["info", out]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1] == ("codec progressive_j2k: lossy, ratio 10, layers [80.0, 40.0] (ratio); "
                        "levels 6, axes (0, 1); stored chunks: 4 lossy")
    assert table[3].split()[-4:] == ["layers", "0..0", "layers", "0..1"]
    row = table[4].split()   # level 0: all layers, % of level 0, layers 0..0, layers 0..1
    assert [int(row[-4]), int(row[-2]), int(row[-1])] == [
        pj.level_nbytes(z)[0], *(pj.level_nbytes(z, layer=j)[0] for j in (0, 1))]
    assert int(row[-2]) < int(row[-1]) < int(row[-4])
    psnr_out = str(tmp_path / "p.zarr")
    assert main(["convert", str(tmp_path / "c.npy"), psnr_out, "--chunks", "256,256", "--psnr",
                 "40", "--layers", "30,35", "--layer-metric", "psnr", "--quiet"]) == 0
    levels = pj.open_multiscale(psnr_out, layer=0)
    assert 28 <= pj._metrics.psnr(levels[0][:], arr) <= 33
    # one target: with a decimal point (a bare number is a count), or any
    # number with --layer-metric psnr
    from progressive_j2k.cli import _layers
    assert (_layers("40.0"), _layers("40,"), _layers("4")) == ((40.0,), (40.0,), 4)
    assert main(["convert", str(tmp_path / "c.npy"), psnr_out, "--chunks", "256,256", "--psnr",
                 "40", "--layers", "33", "--layer-metric", "psnr", "--overwrite",
                 "--quiet"]) == 0
    config = zarr.open_array(psnr_out).metadata.codecs[0].to_dict()["configuration"]
    assert config["layers"] == [33.0] and config["layer_metric"] == "psnr"
    with pytest.raises(SystemExit) as exit_info:   # argparse's usage error
        main(["convert", str(tmp_path / "c.npy"), psnr_out, "--layers", "80,x", "--quiet"])
    assert exit_info.value.code == 2
    assert "expected a count or comma-separated targets" in capsys.readouterr().err


def test_to_zarr_levels_keep_one_grid(real, tmp_path):
    """Level k of an array is its chunks' level k side by side: with chunks
    that are not multiples of 2**k each chunk would end on a partial sample
    and the level would be stretched. The default levels stop there, with a
    warning; levels given are kept, with a warning; chunks that are
    multiples keep them all; chunks of one sample never shrink."""
    stripe = np.zeros((1600, 1600), np.uint8)
    stripe[:, 1360:1424] = 255
    with pytest.warns(UserWarning, match="coded with 3 levels instead of 6"):
        z = pj.to_zarr(stripe, str(tmp_path / "a.zarr"), chunks=(200, 200))
    levels = pj.open_multiscale(z)
    assert len(levels) == 4 and levels[3].shape == (200, 200)
    column = levels[3][100].astype(float)
    assert abs((column * np.arange(200)).sum() / column.sum() - 1391.5 / 8) < 0.5  # in place
    with pytest.warns(UserWarning, match="levels above 3 are stretched"):
        z = pj.to_zarr(stripe, str(tmp_path / "b.zarr"), chunks=(200, 200), levels=5)
    assert len(pj.open_multiscale(z)) == 6
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = pj.to_zarr(stripe, str(tmp_path / "c.zarr"), chunks=(256, 128))
        assert len(pj.open_multiscale(z)) == 7
        pj.to_zarr(stripe[:200, :200], str(tmp_path / "d.zarr"), chunks=(200, 200))  # one chunk


def test_to_zarr_chunks_may_leave_out_the_colour_axis(real, tmp_path):
    """chunks=(256, 256) for an RGB image: the axes left out get the default
    (the whole colour axis), as the README's slide example expects."""
    arr = real("astronaut")
    z = pj.to_zarr(arr, str(tmp_path / "a.zarr"), chunks=(256, 256))
    assert z.chunks == (256, 256, 3)
    np.testing.assert_array_equal(z[:], arr)
    np.save(tmp_path / "a.npy", arr)
    assert main(["convert", str(tmp_path / "a.npy"), str(tmp_path / "b.zarr"), "--chunks",
                 "128,128", "--quiet"]) == 0
    assert zarr.open_array(str(tmp_path / "b.zarr")).chunks == (128, 128, 3)


class RecordingArray:
    """An array-like that records the largest block read from it."""

    def __init__(self, arr):
        self.arr, self.shape, self.dtype, self.largest = arr, arr.shape, arr.dtype, 0

    def __getitem__(self, key):
        block = self.arr[key]
        self.largest = max(self.largest, block.size)
        return block


class FirstAxisArray(RecordingArray):
    """An array-like that slices its first axis only (as some readers do)."""

    def __getitem__(self, key):
        if isinstance(key, tuple):
            raise TypeError("only the first axis can be sliced")
        return super().__getitem__(key)


def test_to_zarr_reads_array_likes_that_slice_their_first_axis_only(real, tmp_path):
    image = real("camera")[None]   # 1 x 512 x 512: rows are cut along axis 1
    z = pj.to_zarr(FirstAxisArray(image), str(tmp_path / "a.zarr"), chunks=(1, 128, 128))
    np.testing.assert_array_equal(z[:], image)


def test_to_zarr_reads_an_ome_image_a_row_of_chunks_at_a_time(real, tmp_path):
    """An OME-Zarr (t, c, z, y, x) image with t = c = z = 1: its y and x are
    the transformed axes (an axis of one sample is not), chunks default to
    1024 along them, and it is read a row of chunks at a time, not whole."""
    image = np.tile(real("mr2_uint16"), (2, 2))[None, None, None]   # 1 x 1 x 1 x 2048 x 2048
    source = RecordingArray(image)
    z = pj.to_zarr(source, str(tmp_path / "a.zarr"))
    assert z.chunks == (1, 1, 1, 1024, 1024)
    config = z.metadata.codecs[0].to_dict()["configuration"]
    assert config["axes"] == [3, 4]
    assert source.largest <= image.size // 2
    np.testing.assert_array_equal(z[:], image)
    assert pj.open_multiscale(z)[3].shape == (1, 1, 1, 256, 256)


def test_to_zarr_reads_each_chunk_of_a_zarr_input_once(real, tmp_path):
    """A zarr input chunked 16 frames deep, written frame by frame: rows of
    write units as long as the input's chunks (each input chunk was read 16
    times); the block the axes are judged on read once for both choices (it
    was read twice).  Lossless, so the copy is exact."""
    volume = real("mni152_t1_uint8_3d")[:64, :120, :100]
    plain = zarr.create_array(CountingStore(zarr.storage.MemoryStore()), shape=volume.shape,
                              chunks=(16, 64, 64), dtype=volume.dtype)
    plain[:] = volume
    plain.store.reads.clear()
    z = pj.to_zarr(plain, str(tmp_path / "a.zarr"), chunks=(1, 64, 64), axes=(1, 2))
    np.testing.assert_array_equal(z[:], volume)
    reads = Counter(key for key, _, _ in plain.store.chunk_reads())
    assert len(reads) == 4 * 2 * 2 and max(reads.values()) == 1
    # a (t, c, y, x) image of unlike channels, written in whole frames: the
    # colour axis's and the axes' central block (the same block, across four
    # input chunks per channel) read once for both
    channels = np.stack([real(name)[:300, :300] for name in ("camera", "moon", "coins")])
    image = np.stack([channels, channels[:, ::-1]])   # 2 x 3 x 300 x 300
    plain = zarr.create_array(CountingStore(zarr.storage.MemoryStore()), shape=image.shape,
                              chunks=(1, 1, 256, 256), dtype=image.dtype)
    plain[:] = image
    plain.store.reads.clear()
    z = pj.to_zarr(plain, str(tmp_path / "b.zarr"))
    np.testing.assert_array_equal(z[:], image)
    reads = Counter(key for key, _, _ in plain.store.chunk_reads())
    assert len(reads) == 2 * 3 * 2 * 2 and sum(reads.values()) == len(reads) + 3 * 4


def test_to_zarr_reads_edge_regions_in_rows_of_their_own(real, tmp_path):
    """Rows grown to the input's chunks are the interior's: an edge region
    (a target and a partial column of chunks) is read in its own rows of 16
    write units, not 16 grown rows (up to 8x ROW_BYTES in one read)."""
    class Chunked(RecordingArray):
        chunks = (256, 64)

        def __getitem__(self, key):
            block = super().__getitem__(key)
            self.shapes.append(block.shape)
            return block

    image = np.ascontiguousarray(np.tile(real("camera"), (4, 1))[:, :70])   # 2048 x 70
    source = Chunked(image)
    source.shapes = []
    z = pj.to_zarr(source, str(tmp_path / "a.zarr"), chunks=(16, 64), psnr=40, levels=4)
    assert z.shape == image.shape
    edge_rows = [rows for rows, columns in source.shapes if columns == 6]
    assert edge_rows and max(edge_rows) <= 16 * 16
    assert max(rows for rows, columns in source.shapes if columns == 64) == 256   # (grown)


def test_preview_shows_the_image_plane_of_band_stacks(real, tmp_path):
    """preview picks the image plane (the long transformed axes) and shows
    bands, frames and slices at their middle: a channels-last stack of six
    bands, coded in 3-D, gave a 128 x 2 picture."""
    pytest.importorskip("imagecodecs")
    import imagecodecs
    photo = real("astronaut")
    bands = np.concatenate([photo, photo], axis=2)   # 512 x 512 x 6
    for name, arr in (("last", bands), ("first", np.ascontiguousarray(np.moveaxis(bands, 2, 0)))):
        np.save(tmp_path / f"{name}.npy", arr)
        assert main(["convert", str(tmp_path / f"{name}.npy"), str(tmp_path / f"{name}.zarr"),
                     "--quiet"]) == 0
        assert main(["preview", str(tmp_path / f"{name}.zarr"), "--level", "2", "-o",
                     str(tmp_path / f"{name}.png")]) == 0
        png = imagecodecs.png_decode((tmp_path / f"{name}.png").read_bytes())
        assert png.shape == (128, 128) and png.std() > 10
    # channels-first colour (the colour axis as coded) comes out as RGB
    channels = np.ascontiguousarray(photo.transpose(2, 0, 1))
    for name, arr in (("rgb_first", channels), ("ome_rgb", channels[None, :, None])):
        pj.to_zarr(arr, str(tmp_path / f"{name}.zarr"))
        assert main(["preview", str(tmp_path / f"{name}.zarr"), "--level", "1", "-o",
                     str(tmp_path / f"{name}.png")]) == 0
        png = imagecodecs.png_decode((tmp_path / f"{name}.png").read_bytes())
        assert png.shape == (256, 256, 3)
        assert np.abs(png.astype(int) - photo[::2, ::2]).mean() < 4


def test_to_zarr_channels_first_colour(real, tmp_path):
    """A channels-first colour image gets encode()'s colour axis, recorded
    in zarr.json (the codecs' "auto" looks at the last axis only): every
    level keeps three channels; chunks that split the channels keep planes."""
    channels = np.ascontiguousarray(real("astronaut").transpose(2, 0, 1))
    z = pj.to_zarr(channels, str(tmp_path / "a.zarr"), chunks=(3, 256, 256))
    config = z.metadata.codecs[0].to_dict()["configuration"]
    assert config["colour_axis"] == 0 and config["axes"] == [1, 2]
    assert pj.open_multiscale(z)[2].shape == (3, 128, 128)
    np.testing.assert_array_equal(z[:], channels)
    split = pj.to_zarr(channels, str(tmp_path / "b.zarr"), chunks=(1, 256, 256))
    assert split.metadata.codecs[0].to_dict()["configuration"]["colour_axis"] == "auto"
    np.testing.assert_array_equal(split[:], channels)


def test_three_unrelated_channels_last_are_coded_as_planes(real, tmp_path):
    """Three unrelated 16-bit channels stored channels last (an MR, a CT
    and another MR) are judged as channels first are: planes, not the
    colour transform, which made them 25% larger (478,505 bytes against
    383,444 with colour_axis=None); encode() and to_zarr alike, to_zarr
    recording it.  A photo's channels keep the colour transform."""
    ct = (real("ct693_int16").astype(np.int32) + 2000).astype(np.uint16)
    mr = real("mr2_uint16")
    stack = np.stack([mr[:512, :512], ct, mr[512:, 512:]], axis=-1)
    planes = pj.encode(stack)
    assert pj.read_header(planes).colour_axis is None
    assert len(planes) < 0.85 * len(pj.encode(stack, colour_axis=-1))
    np.testing.assert_array_equal(pj.decode(planes), stack)
    z = pj.to_zarr(stack, str(tmp_path / "s.zarr"))
    config = z.metadata.codecs[0].to_dict()["configuration"]
    assert config["colour_axis"] is None and config["axes"] == [0, 1]
    assert pj.open_multiscale(z)[1].shape == (256, 256, 3)
    np.testing.assert_array_equal(z[:], stack)
    assert pj.read_header(pj.encode(real("astronaut"))).colour_axis == 2
    photo = pj.to_zarr(real("astronaut"), str(tmp_path / "a.zarr"))
    assert photo.metadata.codecs[0].to_dict()["configuration"]["colour_axis"] == "auto"


def test_preview_of_a_1d_array_says_it_needs_an_image(real, tmp_path, capsys):
    """A 1-D array has no image to show: a clear message, not numpy's
    "invalid data shape" from the PNG encoder."""
    pytest.importorskip("imagecodecs")
    signal = real("mr2_uint16")[256].astype(np.int32) - 1000   # one row of a real image
    pj.to_zarr(signal, str(tmp_path / "s.zarr"))
    assert main(["preview", str(tmp_path / "s.zarr"), "-o", str(tmp_path / "s.png")]) == 2
    assert "is 1-D" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()


def test_to_zarr_shards_may_leave_out_trailing_axes(real, tmp_path):
    """shards, like chunks, may leave out trailing axes (one chunk per shard
    there): an RGB image takes chunks=(256, 256), shards=(512, 512)."""
    photo = real("astronaut")
    z = pj.to_zarr(photo, str(tmp_path / "a.zarr"), chunks=(256, 256), shards=(512, 512))
    assert z.chunks == (256, 256, 3) and z.shards == (512, 512, 3)
    np.testing.assert_array_equal(z[:], photo)
    np.save(tmp_path / "p.npy", photo)
    assert main(["convert", str(tmp_path / "p.npy"), str(tmp_path / "b.zarr"), "--quiet",
                 "--chunks", "256,256", "--shards", "512,512"]) == 0
    assert zarr.open_array(str(tmp_path / "b.zarr")).shards == (512, 512, 3)
    # None or -1 takes an axis whole, as in chunks (in whole chunks: 303 rows -> 320)
    coins = real("coins")
    z = pj.to_zarr(coins, str(tmp_path / "c.zarr"), chunks=(64, 64), shards=(None, -1))
    assert z.shards == (320, 384)
    np.testing.assert_array_equal(z[:], coins)
    z = pj.to_zarr(np.zeros((0, 5), np.uint8), str(tmp_path / "e.zarr"), shards=(None,))
    assert z.shape == (0, 5) and z.shards == (1, 5)   # (an empty axis: one chunk)
    for bad in (("x", 128), (None, 100), (128.5, 128)):
        with pytest.raises(ValueError, match="shards must be up to 2 multiples"):
            pj.to_zarr(coins, str(tmp_path / "d.zarr"), chunks=(64, 64), shards=bad, overwrite=True)
    # lengths are integers (64.5 was cut to 64); a fill value is a number
    for kwargs, match in (({"chunks": (64.5, 64)}, "positive integer lengths"),
                          ({"chunks": (True, 64)}, "positive integer lengths"),
                          ({"fill_value": "x"}, "fill_value must be a number")):
        with pytest.raises(ValueError, match=match):
            pj.to_zarr(coins, str(tmp_path / "g.zarr"), **kwargs)
        assert not (tmp_path / "g.zarr").exists()
    for chunks in ((np.int64(64),), (64.0,), (np.array(64),)):   # whole numbers, as zarr takes
        assert pj.to_zarr(coins, str(tmp_path / "h.zarr"), chunks=chunks,
                          overwrite=True).chunks == (64, 384)
    # attributes JSON cannot hold are refused before overwrite=True deletes anything
    with pytest.raises(TypeError, match="attributes must be JSON"):
        pj.to_zarr(coins, str(tmp_path / "h.zarr"), overwrite=True, attributes={"b": b"x"})
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "h.zarr"))[:], coins)


def test_python_dash_m_runs_the_command():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "progressive_j2k", "info", "absent.zarr"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "progressive-j2k info: error: absent.zarr" in done.stderr


def test_cli_tolerance_with_nodata(real, tmp_path, capsys):
    """--nodata: masked cells decode exactly, `info` says so."""
    zarr = pytest.importorskip("zarr")
    field = real("tlrc_float32_3d")[20].astype(np.float32)
    field[:10, :12] = -999.0
    np.save(tmp_path / "f.npy", field)
    assert main(["convert", str(tmp_path / "f.npy"), str(tmp_path / "f.zarr"), "--tolerance",
                 "0.01", "--nodata", "-999", "--quiet"]) == 0
    back = zarr.open_array(str(tmp_path / "f.zarr"))[:]
    assert (back[:10, :12] == -999.0).all() and np.abs(back - field).max() <= 0.01
    main(["info", str(tmp_path / "f.zarr")])
    assert "tolerance 0.01, nodata -999 kept exactly" in capsys.readouterr().out


def convert_ome_group(group, data, tmp_path, omero):
    """Level 0 of the OME group `group` (at tmp_path / "ome.zarr") written
    as `data`, converted to tmp_path / "p.zarr": its levels, after checking
    level 0's values and that the array carries `omero`."""
    group.create_array("0", data=data)
    main(["convert", str(tmp_path / "ome.zarr"), str(tmp_path / "p.zarr"), "--quiet"])
    assert zarr.open_array(str(tmp_path / "p.zarr"), mode="r").attrs["omero"] == omero
    levels = pj.open_multiscale(str(tmp_path / "p.zarr"))
    np.testing.assert_array_equal(levels[0][...], data)
    return levels


def test_cli_keeps_ome_physical_axes_for_the_levels(real, tmp_path):
    """convert from OME-Zarr keeps level 0's axes, units, scale and
    translation (its dataset's transformations, then the multiscale's), and
    the omero block (channel rendering) as it is; every level's scale
    follows: level k's sample i lies at level 0's 2**k * i."""
    vol = np.ascontiguousarray(real("mni152_t1_uint8_3d")[60:92, 60:124, 40:104])
    group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w")
    axes = [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
    group.attrs["multiscales"] = [{
        "axes": axes, "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [2.0, 0.5, 0.5]},
            {"type": "translation", "translation": [0.0, 10.0, 20.0]}]}],
        "coordinateTransformations": [{"type": "scale", "scale": [1.0, 2.0, 2.0]}]}]
    omero = {"channels": [{"label": "T1", "color": "FFFFFF", "active": True,
                           "window": {"start": 0, "end": 200, "min": 0, "max": 255}}]}
    group.attrs["omero"] = omero
    levels = convert_ome_group(group, vol, tmp_path, omero)
    assert levels[0].scale == (2.0, 1.0, 1.0) and levels[0].translation == (0.0, 20.0, 40.0)
    assert levels[2].scale == (8.0, 4.0, 4.0) and levels[2].units == ("micrometer",) * 3
    # converted again from the converted array: the same physical axes
    main(["convert", str(tmp_path / "p.zarr"), str(tmp_path / "q.zarr"), "--quiet"])
    assert pj.open_multiscale(str(tmp_path / "q.zarr"))[1].scale == (4.0, 2.0, 2.0)
    assert zarr.open_array(str(tmp_path / "q.zarr"), mode="r").attrs["omero"] == omero
    # without them: unit spacing, doubling per level along transformed axes
    plain = pj.open_multiscale(pj.to_zarr(vol[0], str(tmp_path / "r.zarr")))
    assert plain[1].scale == (2.0, 2.0) and plain[1].translation == (0.0, 0.0)
    assert plain[1].units is None


def test_cli_ome_channels_and_time_stay_whole_at_every_level(real, tmp_path):
    """An OME input's channel and time axes are never transformed (OME-Zarr
    pyramids downsample space only): two like channels (neighbouring slices
    of a real MR volume, which the data alone codes in 3-D) keep both at
    every level, and to_xarray names them by their omero labels."""
    vol = real("mni152_t1_uint8_3d")
    stack = np.ascontiguousarray(vol[90:92, 40:168, 30:158])   # c, y, x: alike
    assert pj.read_header(pj.encode(stack)).axes == (0, 1, 2)   # (what the data alone picks)
    group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w")
    group.attrs["multiscales"] = [{"axes": [{"name": "c", "type": "channel"},
                                            {"name": "y", "type": "space"},
                                            {"name": "x", "type": "space"}],
                                   "datasets": [{"path": "0"}]}]
    omero = {"channels": [{"label": "DAPI"}, {"label": "GFP"}]}
    group.attrs["omero"] = omero
    levels = convert_ome_group(group, stack, tmp_path, omero)
    assert [lv.shape for lv in levels][:3] == [(2, 128, 128), (2, 64, 64), (2, 32, 32)]
    np.testing.assert_array_equal(levels[1].to_xarray().coords["c"].values, ["DAPI", "GFP"])
    # level 0's own path is read as a plain array: said
    with pytest.warns(UserWarning, match="is a level of the OME-Zarr group .* convert .* to keep"):
        main(["convert", str(tmp_path / "ome.zarr" / "0"), str(tmp_path / "l0.zarr"), "--quiet"])
    assert "omero" not in zarr.open_array(str(tmp_path / "l0.zarr")).attrs
    # to_zarr with the same attributes alike; (t, y, x) typed time too
    frames = np.ascontiguousarray(vol[100:104, 40:168, 30:158])
    physical = {"axes": [{"name": "t", "type": "time"}, {"name": "y", "type": "space"},
                         {"name": "x", "type": "space"}], "scale": [1.0] * 3}
    z = pj.to_zarr(frames, str(tmp_path / "t.zarr"), attributes={"ome_level0": physical})
    assert z.metadata.codecs[0].axes == (1, 2)
    assert pj.open_multiscale(z)[2].shape == (4, 32, 32)
    # OME-NGFF 0.3's axes, named only: the names type them
    z = pj.to_zarr(frames, str(tmp_path / "t03.zarr"),
                   attributes={"ome_level0": {"axes": ["t", "y", "x"], "scale": [1.0] * 3}})
    assert z.metadata.codecs[0].axes == (1, 2)
    # without OME types the data decides as before
    plain = pj.to_zarr(frames, str(tmp_path / "plain.zarr"))
    assert plain.metadata.codecs[0].axes == (0, 1, 2)


def test_preview_scales_by_the_omero_window(real, tmp_path):
    """preview scales a channel by the display window the omero block gives
    it (the one picked on the c axis), clipped; without one, by the
    picture's own range."""
    imagecodecs = pytest.importorskip("imagecodecs")
    mr = real("mr2_uint16")[:128, :160]
    stack = np.stack([mr, mr // 2])   # c, y, x
    group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w")
    group.attrs["multiscales"] = [{"axes": [{"name": "c", "type": "channel"}, {"name": "y"},
                                            {"name": "x"}], "datasets": [{"path": "0"}]}]
    windows = [(100, 900), (0, 300)]
    group.attrs["omero"] = {"channels": [{"label": f"ch{i}", "window": {
        "start": lo, "end": hi, "min": 0, "max": 65535}} for i, (lo, hi) in enumerate(windows)]}
    group.create_array("0", data=stack, chunks=(1, 128, 160))
    assert main(["convert", str(tmp_path / "ome.zarr"), str(tmp_path / "p.zarr"), "--quiet"]) == 0

    def shown(*flags):
        assert main(["preview", str(tmp_path / "p.zarr"), "-o", str(tmp_path / "p.png"),
                     *flags]) == 0
        return imagecodecs.png_decode((tmp_path / "p.png").read_bytes())

    for channel, (lo, hi) in enumerate(windows):
        expected = np.clip((stack[channel] - float(lo)) / (hi - lo) * 255, 0, 255).astype(np.uint8)
        np.testing.assert_array_equal(shown("--at", f"0={channel}"), expected)
    # the picture's own range where the block gives no window
    group.attrs["omero"] = {"channels": [{"label": "a"}, {"label": "b"}]}
    assert main(["convert", str(tmp_path / "ome.zarr"), str(tmp_path / "p.zarr"), "--quiet",
                 "--overwrite"]) == 0
    image = stack[1].astype(float)
    expected = ((image - image.min()) / (image.max() - image.min()) * 255).astype(np.uint8)
    np.testing.assert_array_equal(shown("--at", "0=1"), expected)
    # a 16-bit colour picture: each channel by its own window (it was scaled
    # by the picture's range, the windows left out)
    rgb = np.ascontiguousarray(real("astronaut")[:96, :128].transpose(2, 0, 1)).astype(np.uint16)
    rgb *= 200
    windows = [(0, 40000), (5000, 30000), (100, 51000)]
    group.attrs["omero"] = {"channels": [{"label": name, "window": {
        "start": lo, "end": hi, "min": 0, "max": 65535}} for name, (lo, hi) in zip("RGB", windows)]}
    group["0"] = rgb   # (a new array at 0)
    assert main(["convert", str(tmp_path / "ome.zarr"), str(tmp_path / "p.zarr"), "--quiet",
                 "--overwrite"]) == 0
    assert pj.open_multiscale(str(tmp_path / "p.zarr"))[1].shape == (3, 48, 64)   # (colour)
    expected = np.stack([np.clip((rgb[c] - float(lo)) / (hi - lo) * 255, 0, 255).astype(np.uint8)
                         for c, (lo, hi) in enumerate(windows)], axis=-1)
    np.testing.assert_array_equal(shown(), expected)


def test_preview_leaves_nodata_out_of_its_range(real, tmp_path):
    """A field stored with nodata -999: preview scales by the other values'
    range (it took -999 in, and showed every valid cell in 248..255), draws
    nodata black, and --range LOW,HIGH sets the scale outright."""
    imagecodecs = pytest.importorskip("imagecodecs")
    field = real("tlrc_float32_3d")[20].astype(np.float32) * 1000 + 250   # 250..1270
    field[10:30, 15:40] = -999
    np.save(tmp_path / "f.npy", field)
    assert main(["convert", str(tmp_path / "f.npy"), str(tmp_path / "f.zarr"), "--tolerance",
                 "0.01", "--nodata", "-999", "--quiet"]) == 0
    back = pj.open_multiscale(str(tmp_path / "f.zarr"))[0][...]

    def shown(*flags):
        assert main(["preview", str(tmp_path / "f.zarr"), "-o", str(tmp_path / "f.png"),
                     *flags]) == 0
        return imagecodecs.png_decode((tmp_path / "f.png").read_bytes())

    valid = back[back != -999]
    lo, hi = float(valid.min()), float(valid.max())
    expected = np.clip((back.astype(float) - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8)
    expected[back == -999] = 0
    np.testing.assert_array_equal(shown(), expected)
    expected = np.clip((back.astype(float) - 300) / 200 * 255, 0, 255).astype(np.uint8)
    expected[back == -999] = 0
    np.testing.assert_array_equal(shown("--range", "300,500"), expected)
    for bad in ("5,1", "1", "a,b", "0,inf"):
        with pytest.raises(SystemExit):
            main(["preview", str(tmp_path / "f.zarr"), "--range", bad])
    # on 8-bit data too (shown as it is without --range)
    camera = real("camera")
    np.save(tmp_path / "c.npy", camera)
    assert main(["convert", str(tmp_path / "c.npy"), str(tmp_path / "c.zarr"), "--quiet"]) == 0
    assert main(["preview", str(tmp_path / "c.zarr"), "-o", str(tmp_path / "c.png")]) == 0
    np.testing.assert_array_equal(imagecodecs.png_decode((tmp_path / "c.png").read_bytes()),
                                  camera)
    assert main(["preview", str(tmp_path / "c.zarr"), "-o", str(tmp_path / "c.png"), "--range",
                 "100,150"]) == 0
    expected = np.clip((camera - 100.0) / 50 * 255, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(imagecodecs.png_decode((tmp_path / "c.png").read_bytes()),
                                  expected)


def test_cli_reads_ome_05_groups(real, tmp_path):
    """OME-NGFF 0.5 keeps its metadata under "ome": convert finds level 0,
    its physical axes and the omero block there too."""
    img = np.ascontiguousarray(real("astronaut")[:96, :128].transpose(2, 0, 1))   # c, y, x
    group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w")
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": n, "type": "space", "unit": "micrometer"} for n in "yx"]
    omero = {"channels": [{"label": name, "color": colour} for name, colour in
                          (("R", "FF0000"), ("G", "00FF00"), ("B", "0000FF"))]}
    group.attrs["ome"] = {"version": "0.5", "omero": omero, "multiscales": [{
        "axes": axes, "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 0.25, 0.25]}]}]}]}
    levels = convert_ome_group(group, img, tmp_path, omero)
    assert levels[0].scale == (1.0, 0.25, 0.25) and levels[1].scale == (1.0, 0.5, 0.5)


#: The attributes xarray gives a CF-packed variable (int16 with scale and offset)
PACKED = {"units": "K", "long_name": "air temperature", "scale_factor": 0.01,
          "add_offset": 273.15}


def _packed_input(tmp_path, real, zarr_format: int):
    """A crop of ct693 as xarray writes a CF-packed variable "t" into a
    group of the given zarr format, its masked cells -32768: zarr v3 with
    dimension names and a _FillValue attribute, zarr v2 with
    _ARRAY_DIMENSIONS and the mask as the fill value; the values written."""
    values = np.array(real("ct693_int16")[128:320, 96:352])   # (a copy: the cache's is shared)
    values[:20, :30] = -32768
    group = zarr.open_group(str(tmp_path / f"in{zarr_format}.zarr"), mode="w",
                            zarr_format=zarr_format)
    attributes = {**PACKED, "coordinates": "lat lon"}   # (names arrays beside it)
    if zarr_format == 3:
        array = group.create_array("t", shape=values.shape, dtype=values.dtype, chunks=(64, 128),
                                   dimension_names=("y", "x"),
                                   attributes={**attributes, "_FillValue": -32768})
    else:
        array = group.create_array("t", shape=values.shape, dtype=values.dtype, chunks=(64, 128),
                                   fill_value=-32768,
                                   attributes={**attributes, "_ARRAY_DIMENSIONS": ["y", "x"]})
    array[:] = values
    return values


def test_cli_carries_a_zarr_inputs_attributes(real, tmp_path, capsys):
    """convert copies a zarr array's attributes (they were dropped) less
    those that say how the input is stored: _ARRAY_DIMENSIONS (zarr v2)
    becomes the dimension names, "coordinates" (arrays not converted) is
    left out, and xarray's mask value (a v3 _FillValue, a v2 xarray array's
    fill value) becomes nodata, so xarray.open_zarr decodes the output as
    it decodes the input: scaled, in K, the masked cells NaN, in lossy
    mode too.  .npy and TIFF inputs carry nothing of the kind."""
    zarr.open_group(str(tmp_path / "out.zarr"), mode="w")
    for zarr_format in (3, 2):
        values = _packed_input(tmp_path, real, zarr_format)
        for mode in ((), ("--lossy", "--step", "8")):
            name = f"v{zarr_format}{'_lossy' if mode else ''}"
            assert main(["convert", str(tmp_path / f"in{zarr_format}.zarr" / "t"),
                         str(tmp_path / "out.zarr" / name), "--quiet", *mode]) == 0
            assert "nodata -32768: the input's _FillValue" in capsys.readouterr().out
            z = zarr.open_array(str(tmp_path / "out.zarr" / name))
            assert z.attrs.asdict() == {**PACKED, "_FillValue": -32768}, name
            assert z.metadata.dimension_names == ("y", "x") and z.fill_value == -32768
            assert _codec_configuration(z)["nodata"] == -32768
            stored = z[:]
            assert (stored[:20, :30] == -32768).all()
            if not mode:
                np.testing.assert_array_equal(stored, values)
    if importlib.util.find_spec("xarray") is None:
        pytest.skip("xarray is not installed: its decoding is not checked")
    import xarray as xr
    expected = np.where(values == -32768, np.nan, values * 0.01 + 273.15)
    dataset = xr.open_zarr(str(tmp_path / "out.zarr"), consolidated=False)
    for name in ("v3", "v2", "v3_lossy", "v2_lossy"):
        decoded = dataset[name]
        assert decoded.dims == ("y", "x") and decoded.attrs == {
            "units": "K", "long_name": "air temperature"}, name
        assert np.array_equal(np.isnan(decoded.values), np.isnan(expected)), name
        tolerance = 1e-9 if "lossy" not in name else 0.5
        np.testing.assert_allclose(decoded.values, expected, atol=tolerance, err_msg=name)
    # .npy (and TIFF) inputs: no attributes, as before
    np.save(tmp_path / "t.npy", values)
    assert main(["convert", str(tmp_path / "t.npy"), str(tmp_path / "n.zarr"), "--quiet"]) == 0
    assert zarr.open_array(str(tmp_path / "n.zarr")).attrs.asdict() == {}


def test_cli_input_fill_value_and_nodata(real, tmp_path, capsys):
    """A zarr input's _FillValue is never copied as it is: to_zarr writes
    the output's from nodata.  Without --nodata it is nodata (a float's
    from xarray's base64 form); --nodata wins, warned where it differs
    (not for NaN on floats: NaN cells are stored as nodata); one that
    cannot be nodata of the dtype is left out, warned."""
    import base64
    import struct

    def xarray_float(value) -> str:   # (xarray's zarr v3 _FillValue of a float)
        return base64.standard_b64encode(struct.pack("<d", value)).decode()

    field = np.array(real("tlrc_float32_3d")[20], dtype=np.float32)   # (a copy)
    field[:10, :12] = -999.0
    zarr.create_array(str(tmp_path / "f.zarr"), data=field, dimension_names=("lat", "lon"),
                      attributes={"units": "K", "_FillValue": xarray_float(-999.0)})

    def convert(source, out, *flags, expect_warning=None):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(["convert", str(tmp_path / source), str(tmp_path / out), "--quiet",
                         "--tolerance", "0.01", *flags]) == 0
        said = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        assert said == ([] if expect_warning is None else [expect_warning]), said
        return zarr.open_array(str(tmp_path / out))

    for flags in ((), ("--nodata", "-999")):   # the same array either way
        z = convert("f.zarr", f"f{len(flags)}.zarr", *flags)
        assert z.attrs.asdict() == {"units": "K", "_FillValue": xarray_float(-999.0)}
        assert z.fill_value == -999.0 and _codec_configuration(z)["nodata"] == -999.0
        assert (z[:10, :12] == -999.0).all() and np.abs(z[:] - field).max() <= 0.01
    z = convert("f.zarr", "other.zarr", "--nodata", "-500", expect_warning=(
        "the input's _FillValue -999 is not --nodata -500: cells of -999 are kept as data, "
        "no longer masked"))
    assert z.attrs["_FillValue"] == xarray_float(-500.0) and z.fill_value == -500.0
    # --nodata none: the mask value's cells are data, and nothing masks them
    z = convert("f.zarr", "none.zarr", "--nodata", "none")
    assert z.attrs.asdict() == {"units": "K"} and "nodata" not in _codec_configuration(z)
    assert np.abs(z[:] - field).max() <= 0.01 and not (z[:10, :12] == -999.0).all()
    assert "no nodata: cells of the input's _FillValue" in capsys.readouterr().out
    with pytest.raises(SystemExit):   # argparse's usage error
        main(["convert", str(tmp_path / "f.zarr"), str(tmp_path / "bad.zarr"),
              "--nodata", "nothing"])
    assert "expected a finite number, nan or none, got 'nothing'" in capsys.readouterr().err
    with pytest.raises(SystemExit):   # (infinity is no mask value)
        main(["convert", str(tmp_path / "f.zarr"), str(tmp_path / "bad.zarr"), "--nodata", "inf"])
    # CF's 1e20 as xarray stores it for float32 (its float32 value) is --nodata 1e20
    field[:10, :12] = np.float32(1e20)
    zarr.create_array(str(tmp_path / "cf.zarr"), data=field,
                      attributes={"_FillValue": xarray_float(float(np.float32(1e20)))})
    for flags in ((), ("--nodata", "1e20")):
        z = convert("cf.zarr", f"cf{len(flags)}.zarr", *flags)
        assert z.fill_value == np.float32(1e20) and (z[:10, :12] == np.float32(1e20)).all()
    # xarray's float default, NaN: NaN cells need --nodata, and are stored as it
    field[:10, :12] = np.nan
    zarr.create_array(str(tmp_path / "nan.zarr"), data=field,
                      attributes={"units": "K", "_FillValue": xarray_float(math.nan)})
    z = convert("nan.zarr", "nan_out.zarr", "--nodata", "-999")
    assert z.attrs.asdict() == {"units": "K", "_FillValue": xarray_float(-999.0)}
    assert (z[:10, :12] == -999.0).all()
    assert main(["convert", str(tmp_path / "nan.zarr"), str(tmp_path / "refused.zarr"),
                 "--quiet", "--tolerance", "0.01"]) == 2
    assert "For masked cells give --nodata" in capsys.readouterr().err
    # a mask value the dtype cannot hold is no nodata
    counts = np.ascontiguousarray(real("camera")[:64, :64]).astype(np.int16)
    zarr.create_array(str(tmp_path / "c.zarr"), data=counts,
                      attributes={"units": "counts", "_FillValue": 1e20})
    z = convert("c.zarr", "c_out.zarr", expect_warning=(
        "the input's _FillValue 1e+20 cannot be nodata (nodata 1e+20 is not a int16 value "
        "(-32768 to 32767, whole numbers)): left out; give --nodata to mask cells"))
    assert z.attrs.asdict() == {"units": "counts"} and "nodata" not in _codec_configuration(z)


def test_cf_missing_value_and_raw_fill_values_are_masks(real, tmp_path, capsys):
    """CF's missing_value is a mask value xarray reads as it reads
    _FillValue: convert takes it as nodata where no _FillValue is given, and
    to_zarr takes a DataArray's attributes' mask value (a variable opened
    with mask_and_scale=False, whose _FillValue is copied with them), so the
    masked cells stay masked at every level in lossy modes.  A second mask
    value that is not nodata is not copied (its cells are data), warned; an
    attributes' _FillValue that is not the nodata given yields to it."""
    xr = pytest.importorskip("xarray")
    counts = np.array(real("ct693_int16")[:256, :256])
    counts[:40, :50] = -32768
    masked = counts == -32768
    zarr.create_array(str(tmp_path / "mv.zarr"), data=counts, dimension_names=("y", "x"),
                      attributes={"units": "K", "missing_value": -32768})
    assert main(["convert", str(tmp_path / "mv.zarr"), str(tmp_path / "out.zarr"), "--quiet",
                 "--ratio", "20"]) == 0
    assert "nodata -32768: the input's missing_value" in capsys.readouterr().out
    levels = pj.open_multiscale(str(tmp_path / "out.zarr"))
    assert (levels[0][...][masked] == -32768).all()
    assert (levels[1][...] == -32768).sum() == masked[::2, ::2].sum()   # (40 x 50: even)
    assert levels[0].to_xarray().attrs["missing_value"] == -32768
    # a DataArray opened raw (mask_and_scale=False): its attributes' _FillValue is nodata
    raw = xr.DataArray(counts, dims=("y", "x"), attrs={"scale_factor": 0.01, "_FillValue": -32768})
    zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    z = to_zarr(raw, str(tmp_path / "g.zarr" / "t"), ratio=20)
    assert _codec_configuration(z)["nodata"] == -32768 and z.attrs["_FillValue"] == -32768
    decoded = xr.open_zarr(str(tmp_path / "g.zarr"), consolidated=False)["t"].values
    assert np.array_equal(np.isnan(decoded), masked)
    # a variable unpacked by xarray is float: the lossless refusal says how to keep the integers
    unpacked = xr.DataArray(counts * 0.01 + 273.15, dims=("y", "x"))
    unpacked.encoding.update(dtype="int16", scale_factor=0.01, add_offset=273.15)
    with pytest.raises(TypeError, match="unpacked from int16 .* open it with mask_and_scale=False"):
        to_zarr(unpacked, str(tmp_path / "g.zarr" / "u"))
    # two mask values: one is nodata, the other's cells are data and its attribute goes
    two = xr.DataArray(counts, dims=("y", "x"), attrs={"_FillValue": -32768, "missing_value": 0})
    with pytest.warns(UserWarning, match="missing_value 0 is not nodata -32768: its cells are"):
        z = to_zarr(two, str(tmp_path / "g.zarr" / "two"), ratio=20)
    assert "missing_value" not in z.attrs and z.attrs["_FillValue"] == -32768
    # CF's list of missing values, of which only one can be nodata: not copied
    listed = xr.DataArray(counts, dims=("y", "x"),
                          attrs={"_FillValue": -32768, "missing_value": [-32768, 0]})
    with pytest.warns(UserWarning, match=r"missing_value \[-32768, 0\] is not nodata -32768"):
        z = to_zarr(listed, str(tmp_path / "g.zarr" / "listed"), ratio=20)
    assert "missing_value" not in z.attrs
    # without nodata, a missing_value given with the attributes stays as given
    z = to_zarr(counts, str(tmp_path / "plain.zarr"), ratio=20, attributes={"missing_value": 0})
    assert z.attrs["missing_value"] == 0
    # a mask value the dtype cannot hold is no nodata, and is not copied
    small = xr.DataArray(counts.astype(np.uint8), dims=("y", "x"), attrs={"_FillValue": -9999})
    with pytest.warns(UserWarning, match="_FillValue -9999 cannot be nodata"):
        z = to_zarr(small, str(tmp_path / "g.zarr" / "u8"))
    assert "_FillValue" not in z.attrs
    # a NaN _FillValue in xarray's text form, with nodata given: nodata's, so NaN cells mask
    from progressive_j2k._xarray import float_for_xarray
    field = counts.astype(np.float32)
    field[:8, :8] = np.nan
    z = to_zarr(field, str(tmp_path / "g.zarr" / "f"), tolerance=1, nodata=-9999.0,
                attributes={"_FillValue": float_for_xarray(math.nan)}, dimension_names=("y", "x"))
    assert z.attrs["_FillValue"] == float_for_xarray(-9999.0)
    # a given nodata wins over the attributes' _FillValue, which would mask other cells
    with pytest.warns(UserWarning, match="_FillValue -32768 is not nodata -1000: the array's"):
        z = to_zarr(counts, str(tmp_path / "g.zarr" / "n"), ratio=20, nodata=-1000,
                    attributes={"_FillValue": -32768}, dimension_names=("y", "x"))
    assert z.attrs["_FillValue"] == -1000


def test_cli_nan_as_the_mask(real, tmp_path, capsys):
    """--nodata nan keeps NaN cells as NaN (to_zarr's NaN fill value): exact
    at every level and out of coarser ones; a float zarr input whose fill
    value is NaN (xarray's default) gets it without asking; an integer
    input cannot, and a .npy with NaN and no --nodata is refused with the
    advice."""
    field = np.array(real("tlrc_float32_3d"), dtype=np.float32)
    field[:, :10, :] = np.nan
    np.save(tmp_path / "f.npy", field)
    assert main(["convert", str(tmp_path / "f.npy"), str(tmp_path / "no.zarr"), "--quiet",
                 "--tolerance", "0.01"]) == 2
    assert "give --nodata nan (NaN cells kept as NaN)" in capsys.readouterr().err
    zarr.create_array(str(tmp_path / "in.zarr"), data=field, fill_value=np.nan)
    for source, flags in (("f.npy", ["--nodata", "nan"]), ("in.zarr", [])):
        out = str(tmp_path / f"{source}.out.zarr")
        assert main(["convert", str(tmp_path / source), out, "--quiet", "--tolerance", "0.01",
                     *flags]) == 0
        assert ("the input's fill value" in capsys.readouterr().out) == (source == "in.zarr")
        z = zarr.open_array(out)
        assert np.isnan(z.fill_value) and "_FillValue" not in z.attrs
        levels = pj.open_multiscale(out)
        np.testing.assert_array_equal(np.isnan(levels[0][...]), np.isnan(field))
        assert np.nanmax(np.abs(levels[0][...] - field)) <= 0.01
        coarse = levels[1][...]   # (rows 0-9 are NaN: level 1's rows 0-4, and no other cell)
        assert np.isnan(coarse[:, :5, :]).all() and not np.isnan(coarse[:, 5:, :]).any()
    np.save(tmp_path / "i.npy", np.zeros((8, 8), np.int16))
    assert main(["convert", str(tmp_path / "i.npy"), str(tmp_path / "i.zarr"), "--nodata",
                 "nan"]) == 2
    assert "--nodata nan needs float data (NaN cells), the input is int16" in \
        capsys.readouterr().err


def test_writing_into_an_xarray_store(real, tmp_path):
    """A variable written into a Dataset's store (xarray consolidates its
    metadata by default, and reads that first) is seen by xarray, and one
    overwritten is read with its new codec: the groups' consolidated
    metadata is written again.  A zarr v2 group is refused (a v3 array in
    it is one xarray never sees); an array without dimension names in a
    group of named ones is warned of (xarray opens no such group)."""
    xr = pytest.importorskip("xarray")
    field = np.array(real("tlrc_float32_3d"), dtype=np.float32)
    dims = ("z", "y", "x")
    xr.Dataset({"a": (dims, field)}, coords={"z": np.arange(field.shape[0])}).to_zarr(
        str(tmp_path / "ds.zarr"), mode="w", consolidated=True)
    to_zarr(xr.DataArray(field, dims=dims), str(tmp_path / "ds.zarr" / "t"), tolerance=0.01)
    opened = xr.open_zarr(str(tmp_path / "ds.zarr"))   # (consolidated, as xarray reads it)
    assert sorted(opened.data_vars) == ["a", "t"]
    assert np.abs(opened["t"].values - field).max() <= 0.01
    to_zarr(xr.DataArray(field, dims=dims), str(tmp_path / "ds.zarr" / "a"), tolerance=0.001,
            overwrite=True)   # (was zstd: the stale listing failed to decode it)
    assert np.abs(xr.open_zarr(str(tmp_path / "ds.zarr"))["a"].values - field).max() <= 0.001
    assert main(["convert", str(tmp_path / "ds.zarr" / "t"), str(tmp_path / "ds.zarr" / "c"),
                 "--quiet", "--tolerance", "0.1"]) == 0
    assert sorted(xr.open_zarr(str(tmp_path / "ds.zarr")).data_vars) == ["a", "c", "t"]
    with pytest.warns(UserWarning, match="give dimension_names"):
        to_zarr(field, str(tmp_path / "ds.zarr" / "plain"), tolerance=0.01)
    np.save(tmp_path / "f.npy", field)   # (convert: --dimension-names, as xarray needs them)
    assert main(["convert", str(tmp_path / "f.npy"), str(tmp_path / "ds.zarr" / "plain"),
                 "--quiet", "--tolerance", "0.01", "--overwrite",
                 "--dimension-names", "z,y,x"]) == 0
    assert xr.open_zarr(str(tmp_path / "ds.zarr"))["plain"].dims == dims
    assert main(["convert", str(tmp_path / "f.npy"), str(tmp_path / "n.zarr"),
                 "--tolerance", "0.01", "--dimension-names", "y,x"]) == 2
    xr.Dataset({"a": (dims, field)}).to_zarr(str(tmp_path / "v2.zarr"), mode="w", zarr_format=2)
    with pytest.raises(ValueError, match="is zarr v2, and a zarr v3 array"):
        to_zarr(xr.DataArray(field, dims=dims), str(tmp_path / "v2.zarr" / "t"), tolerance=0.01)
    assert not (tmp_path / "v2.zarr" / "t").exists()
    # convert --overwrite writes beside the outermost group first: refused all the same
    assert main(["convert", str(tmp_path / "f.npy"), str(tmp_path / "v2.zarr" / "a"),
                 "--tolerance", "0.01", "--overwrite", "--dimension-names", "z,y,x"]) == 2
    assert list(xr.open_zarr(str(tmp_path / "v2.zarr")).data_vars) == ["a"]
    # a neighbour's broken metadata: only the new array's entry is written
    (tmp_path / "ds.zarr" / "broken").mkdir()
    (tmp_path / "ds.zarr" / "broken" / "zarr.json").write_text("{not json")
    to_zarr(xr.DataArray(field, dims=dims), str(tmp_path / "ds.zarr" / "late"), tolerance=0.01)
    assert "late" in xr.open_zarr(str(tmp_path / "ds.zarr")).data_vars
    # a consolidated block this package does not know (not zarr's "inline")
    # is consolidated whole, which the neighbour fails: the array is
    # written and kept, and the failure said
    group = json.loads((tmp_path / "ds.zarr" / "zarr.json").read_text())
    group["consolidated_metadata"]["kind"] = "elsewhere"
    (tmp_path / "ds.zarr" / "zarr.json").write_text(json.dumps(group))
    with pytest.warns(UserWarning, match="is written, but the consolidated metadata of the group"):
        z = to_zarr(xr.DataArray(field, dims=dims), str(tmp_path / "ds.zarr" / "later"),
                    tolerance=0.01)
    assert np.abs(z[...] - field).max() <= 0.01


def test_consolidated_metadata_is_kept_as_zarr_writes_it(real, tmp_path):
    """to_zarr and convert update a group's consolidated metadata with the
    array's entry alone (consolidating the whole group again at every write
    made N writes O(N**2)): after new arrays, an overwrite, an array in a
    nested group and convert --overwrite's swap, every group's metadata is
    what zarr.consolidate_metadata makes of it, in its order, and the
    file keeps its mode."""
    image = real("camera")[:64, :96]
    root = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    root.create_group("inner").create_array("old", shape=(3,), dtype="f4", dimension_names=["k"])
    root.create_array("zeta", shape=(4,), dtype="i2", dimension_names=["k"])
    for group in ("g.zarr/inner", "g.zarr"):
        zarr.consolidate_metadata(str(tmp_path / group))
    (tmp_path / "g.zarr" / "zarr.json").chmod(0o640)
    names = ("y", "x")
    to_zarr(image, str(tmp_path / "g.zarr" / "b"), chunks=(32, 32), dimension_names=names)
    to_zarr(image, str(tmp_path / "g.zarr" / "a"), chunks=(32, 32), dimension_names=names)
    to_zarr(image.astype(np.float32), str(tmp_path / "g.zarr" / "inner" / "c"),
            chunks=(32, 32), dimension_names=names, fill_value=float("nan"), mode="lossy")
    to_zarr(image, str(tmp_path / "g.zarr" / "b"), chunks=(64, 64), dimension_names=names,
            overwrite=True)
    np.save(tmp_path / "i.npy", image)
    assert main(["convert", str(tmp_path / "i.npy"), str(tmp_path / "g.zarr" / "a"), "--quiet",
                 "--overwrite", "--dimension-names", "y,x", "--chunks", "16,16"]) == 0
    ours = {group: json.loads((tmp_path / group / "zarr.json").read_text())
            for group in ("g.zarr", "g.zarr/inner")}
    assert (tmp_path / "g.zarr" / "zarr.json").stat().st_mode & 0o777 == 0o640
    assert ours["g.zarr"]["consolidated_metadata"]["metadata"]["a"]["chunk_grid"][
        "configuration"]["chunk_shape"] == [16, 16]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for group in ("g.zarr/inner", "g.zarr"):
            zarr.consolidate_metadata(str(tmp_path / group))
    # an array written over a group, and into a group made since the last
    # consolidation: the listing changed, so the group is consolidated whole
    sub = zarr.open_group(str(tmp_path / "g.zarr"), mode="a", use_consolidated=False)
    sub.create_group("was").create_array("0", shape=(2,), dtype="u1", dimension_names=["k"])
    sub.create_group("new")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(tmp_path / "g.zarr"))
    zarr.open_group(str(tmp_path / "g.zarr"), mode="a", use_consolidated=False).create_group(
        "newer")
    to_zarr(image, str(tmp_path / "g.zarr" / "was"), chunks=(32, 32), dimension_names=names,
            overwrite=True)
    to_zarr(image, str(tmp_path / "g.zarr" / "newer" / "d"), chunks=(32, 32),
            dimension_names=names)
    listed = json.loads((tmp_path / "g.zarr" / "zarr.json").read_text())[
        "consolidated_metadata"]["metadata"]
    assert "was/0" not in listed and {"newer", "newer/d"} <= set(listed)
    zarr.open_group(str(tmp_path / "g.zarr"), mode="r")   # (it opens: it did not, listing was/0)
    ours = {group: json.loads((tmp_path / group / "zarr.json").read_text())
            for group in ("g.zarr", "g.zarr/inner")}
    for group, document in ours.items():
        theirs = json.loads((tmp_path / group / "zarr.json").read_text())
        assert document == theirs, group
        assert list(document["consolidated_metadata"]["metadata"]) == \
            list(theirs["consolidated_metadata"]["metadata"]), group


def test_cli_carries_an_ome_groups_attributes_less_its_ome_blocks(real, tmp_path):
    """An OME-Zarr group is the image: convert copies its attributes and
    its level-0 array's, but not its OME blocks (multiscales names the
    input's levels and is carried as ome_level0; omero is carried as it
    is; 0.5's "ome" holds them), nor the array's _ARRAY_DIMENSIONS."""
    image = np.ascontiguousarray(real("camera")[:128, :192])
    omero = {"channels": [{"label": "camera", "window": {"start": 0, "end": 255}}]}
    for version in ("0.4", "0.5"):
        group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w",
                                zarr_format=2 if version == "0.4" else 3)
        multiscales = [{"axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
                        "datasets": [{"path": "0", "coordinateTransformations": [
                            {"type": "scale", "scale": [0.5, 0.5]}]}]}]
        if version == "0.4":
            group.attrs.update({"multiscales": multiscales, "omero": omero})
        else:
            group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales, "omero": omero}
        group.attrs["study"] = {"subject": 7}
        # (no fill value: zarr v2's, with _ARRAY_DIMENSIONS, is xarray's mask value)
        level0 = group.create_array("0", shape=image.shape, dtype=image.dtype, chunks=(64, 64),
                                    fill_value=None)
        level0[:] = image
        level0.attrs.update({"long_name": "a camera man", "_ARRAY_DIMENSIONS": ["y", "x"]})
        main(["convert", str(tmp_path / "ome.zarr"), str(tmp_path / f"p{version}.zarr"),
              "--quiet"])
        z = zarr.open_array(str(tmp_path / f"p{version}.zarr"))
        assert z.attrs.asdict() == {
            "long_name": "a camera man", "study": {"subject": 7}, "omero": omero,
            "ome_level0": {"axes": multiscales[0]["axes"], "scale": [0.5, 0.5],
                           "translation": [0.0, 0.0]}}, version
        assert z.metadata.dimension_names == ("y", "x")
        np.testing.assert_array_equal(z[:], image)


def test_input_attributes_json_cannot_hold_are_left_out_and_warned():
    """(zarr's own attributes are JSON; a store's may hold what is not.)"""
    from progressive_j2k._inputs import _json_attributes
    with pytest.warns(UserWarning, match=r"^the input's attributes when cannot be stored as "
                                         r"JSON: left out$"):
        kept = _json_attributes({"when": np.datetime64("2020-01-01"), "units": "K",
                                 "scale": np.float32(0.5)})
    assert kept == {"units": "K", "scale": 0.5}

def test_malformed_physical_axes_warn_and_fall_back_to_unit_spacing(real, tmp_path):
    """OME transformations convert cannot use are named in a warning (not a
    crash), and an array whose ome_level0 attribute is malformed still opens,
    with unit spacing."""
    image = np.ascontiguousarray(real("camera")[:64, :96])
    group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w")
    group.attrs["multiscales"] = [{
        "axes": ["y", "x"], "datasets": [{"path": "0", "coordinateTransformations": [
            "scale", {"type": "scale", "scale": [2.0, None]}, {"type": "identity"},
            {"type": "translation", "translation": [5.0, 6.0]}]}]}]
    group.create_array("0", data=image)
    with pytest.warns(UserWarning, match=r"not understood.*'scale', scale"):
        main(["convert", str(tmp_path / "ome.zarr"), str(tmp_path / "p.zarr"), "--quiet"])
    levels = pj.open_multiscale(str(tmp_path / "p.zarr"))
    assert levels[1].scale == (2.0, 2.0) and levels[1].translation == (5.0, 6.0)
    assert levels[1].units is None   # (OME 0.3's plain axis names carry no units)
    for bad in ({"scale": 2.0}, {"scale": [2.0, None], "translation": [0, 0]}, "text",
                {"scale": [1.0, 1.0], "translation": [1, "x"]}):
        z = pj.to_zarr(image, str(tmp_path / "b.zarr"), overwrite=True,
                       attributes={"ome_level0": bad})
        with pytest.warns(UserWarning, match="ome_level0 is malformed"):
            assert pj.open_multiscale(z)[1].scale == (2.0, 2.0)
    # a scale alone: no offset; axes that are not a list: no units
    z = pj.to_zarr(image, str(tmp_path / "b.zarr"), overwrite=True,
                   attributes={"ome_level0": {"scale": [0.5, 0.25], "axes": 5}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        level = pj.open_multiscale(z)[1]
    assert (level.scale, level.translation, level.units) == ((1.0, 0.5), (0.0, 0.0), None)


def test_preview_at_picks_the_slice(real, tmp_path, capsys, monkeypatch):
    """--at shows the slice asked for (a full-resolution index; at a level,
    the sample at or before it, as Level.positions places them: halved per
    level where chunks are multiples of 2**level, not in chunks of 11)
    instead of the middle one (an axis by number or name; an index from the
    end if negative; a picked axis of the default picture leaves the other
    two), and refuses indices beyond the array."""
    pytest.importorskip("imagecodecs")
    import imagecodecs
    vol = real("mni152_t1_uint8_3d")
    pj.to_zarr(vol, str(tmp_path / "v.zarr"))
    levels = pj.open_multiscale(str(tmp_path / "v.zarr"))
    for level, index in ((0, 40), (2, 150)):
        out = str(tmp_path / f"{level}.png")
        assert main(["preview", str(tmp_path / "v.zarr"), "--level", str(level), "--at",
                     f"0={index}", "-o", out]) == 0
        png = imagecodecs.png_decode((tmp_path / f"{level}.png").read_bytes())
        np.testing.assert_array_equal(png, levels[level][index >> level])
    with pytest.warns(UserWarning, match="stretched"):   # (as it writes, and as it opens)
        pj.to_zarr(vol[80:140, 80:140, 60:120], str(tmp_path / "odd.zarr"), chunks=(11, 60, 60),
                   levels=2)
    with pytest.warns(UserWarning, match="stretched"):
        odd = pj.open_multiscale(str(tmp_path / "odd.zarr"))
    assert list(odd[1].positions(0)[10:12]) == [19, 21]   # (chunk 1 starts at 11: odd)
    with pytest.warns(UserWarning, match="stretched"):
        assert main(["preview", str(tmp_path / "odd.zarr"), "--level", "1", "--at", "0=21",
                     "-o", str(tmp_path / "odd.png")]) == 0
    png = imagecodecs.png_decode((tmp_path / "odd.png").read_bytes())
    np.testing.assert_array_equal(png, odd[1][11])
    assert (odd[1][11] != odd[1][10]).any()   # (21 >> 1 would show 19, another slice)
    # an axis of the default picture picked: the picture is the two left
    # (coronal here), as export takes any axis; by name, from the end
    pj.to_zarr(vol, str(tmp_path / "named.zarr"), dimension_names=("z", "y", "x"))
    for name, flags, expected in (("v", ["--at", "1=40"], vol[:, 40, :]),
                                  ("named", ["--at", "y=-1"], vol[:, -1, :]),
                                  ("named", ["--at", "z=40"], vol[40])):
        assert main(["preview", str(tmp_path / f"{name}.zarr"), *flags, "-o",
                     str(tmp_path / "c.png")]) == 0
        np.testing.assert_array_equal(
            imagecodecs.png_decode((tmp_path / "c.png").read_bytes()), expected)
    for bad, message in (("0=1,1=2,2=3", "the picture needs two left"),
                         ("-3=197", "indices 0 to 196"), ("0=1,-3=0", "given twice"),
                         ("q=1", "no axis is named 'q' (the axes: dim_0, dim_1, dim_2)")):
        assert main(["preview", str(tmp_path / "v.zarr"), f"--at={bad}", "-o",
                     str(tmp_path / "x.png")]) == 2
        assert message in capsys.readouterr().err
    assert main(["preview", str(tmp_path / "v.zarr"), "--at", "0=10", "--at", "0=150", "-o",
                 str(tmp_path / "x.png")]) == 2   # (repeated flags, not only a list)
    assert "given twice" in capsys.readouterr().err
    # PNG only, under its own name; a level too large to read refused before reading
    assert main(["preview", str(tmp_path / "v.zarr"), "-o", str(tmp_path / "x.jpg")]) == 2
    assert "name the output *.png" in capsys.readouterr().err
    assert not (tmp_path / "x.jpg").exists()
    from progressive_j2k import cli
    monkeypatch.setattr(cli, "PREVIEW_MAX_BYTES", 233 * 189 - 1)   # level 0's uint8 picture, less one
    assert main(["preview", str(tmp_path / "v.zarr"), "-o", str(tmp_path / "x.png")]) == 2
    assert "choose a coarser level" in capsys.readouterr().err
    assert main(["preview", str(tmp_path / "v.zarr"), "--level", "1", "-o",
                 str(tmp_path / "x.png")]) == 0


def test_a_failed_overwrite_waits_for_its_own_writes_only():
    """to_zarr(overwrite=True) that fails waits for the reads and writes it
    left on zarr's event loop, not for those other threads had under way
    as it began (a slow read elsewhere held a failed write for a minute)."""
    import asyncio
    from zarr.core.sync import sync
    from progressive_j2k._guards import settle_zarr_writes, zarr_tasks

    async def start(delay):
        return asyncio.ensure_future(asyncio.sleep(delay))

    elsewhere = sync(start(20))    # another thread's slow read, say
    before = zarr_tasks()
    own = sync(start(0.2))         # this call's write, left running by its failure
    settle_zarr_writes(timeout=30, before=before)
    assert own.done() and not elsewhere.done()
    elsewhere.get_loop().call_soon_threadsafe(elsewhere.cancel)
