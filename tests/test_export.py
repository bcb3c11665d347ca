"""export_jpeg2000 and `progressive-j2k export`: genuine JPEG 2000 (OpenJPEG
through imagecodecs, tifffile for TIFF) that other software reads, checked by
reading it back with those libraries: a lossless pyramid's every level equals
the source's level bit for bit."""
import struct

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
imagecodecs = pytest.importorskip("imagecodecs")
tifffile = pytest.importorskip("tifffile")

import progressive_j2k as pj  # noqa: E402
from progressive_j2k._metrics import psnr  # noqa: E402
from progressive_j2k.cli import main  # noqa: E402


@pytest.mark.parametrize("name", ["camera", "astronaut", "mr2_uint16", "ct693_int16"])
def test_lossless_pyramid_holds_every_level_exactly(real, tmp_path, name):
    image = real(name)
    levels = pj.open_multiscale(pj.to_zarr(image, str(tmp_path / "a.zarr"), chunks=(256, 256)))
    pj.export_jpeg2000(str(tmp_path / "a.zarr"), tmp_path / "a.tif", tile=128)
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        pyramid = tif.series[0].levels
        assert len(pyramid) == len(levels) and tif.pages[0].compression == 34712   # JPEG 2000
        for stored, level in zip(pyramid, levels):
            np.testing.assert_array_equal(stored.asarray(), level[:])
    pj.export_jpeg2000(levels, tmp_path / "b.tif", level=2, tile=64)   # from level 2 down
    with tifffile.TiffFile(tmp_path / "b.tif") as tif:
        np.testing.assert_array_equal(tif.series[0].levels[0].asarray(), levels[2][:])
        assert len(tif.series[0].levels) == len(levels) - 2


def test_codestreams_and_lossy_targets(real, tmp_path):
    image = real("astronaut")
    levels = pj.open_multiscale(pj.to_zarr(image, str(tmp_path / "a.zarr"), chunks=(256, 256)))
    for suffix, box in ((".jp2", b"jP  "), (".j2k", b"\xff\x4f\xff\x51")):
        pj.export_jpeg2000(levels, tmp_path / f"l1{suffix}", level=1)
        data = (tmp_path / f"l1{suffix}").read_bytes()
        assert box in data[:12]
        np.testing.assert_array_equal(imagecodecs.jpeg2k_decode(data), levels[1][:])
    pj.export_jpeg2000(image, tmp_path / "lossy.jp2", psnr=38)   # a numpy image
    decoded = imagecodecs.jpeg2k_decode((tmp_path / "lossy.jp2").read_bytes())
    assert 36 < psnr(decoded, image) < 45
    assert (tmp_path / "lossy.jp2").stat().st_size < image.nbytes / 8
    pj.export_jpeg2000(levels, tmp_path / "lossy.ome.tif", psnr=38, tile=256)
    with tifffile.TiffFile(tmp_path / "lossy.ome.tif") as tif:
        assert tif.is_ome and tif.series[0].axes == "YXS"
        assert psnr(tif.series[0].levels[0].asarray(), image) > 36


def test_export_refuses_what_jpeg2000_cannot_hold(real, tmp_path):
    for source, match in ((real("mni152_t1_uint8_3d")[:20, :30, :40], "takes images"),
                          (real("tlrc_float32_3d")[5], "float32"),
                          (real("camera").astype(np.uint32), "uint32")):
        with pytest.raises(ValueError, match=match):
            pj.export_jpeg2000(source, tmp_path / "x.tif")
    for kwargs, match in (({"psnr": 0}, "psnr"), ({"tile": 100}, "multiple of 16"),
                          ({"level": 1}, "levels 0 to 0")):
        with pytest.raises(ValueError, match=match):
            pj.export_jpeg2000(real("camera"), tmp_path / "x.tif", **kwargs)
    with pytest.raises(ValueError, match="writes .tif"):
        pj.export_jpeg2000(real("camera"), tmp_path / "x.png")
    camera = real("camera")
    for kwargs, error in (({"tile": 1 << 20}, ValueError), ({"psnr": True}, ValueError),
                          ({"level": True}, TypeError), ({"level": 0.5}, TypeError)):
        with pytest.raises(error):
            pj.export_jpeg2000(camera, tmp_path / "x.tif", **kwargs)
    for levels, match in (([camera[:0]], "empty"), ([camera, camera[::2, ::2].astype(np.int16)],
                                                     "does not belong"),
                          ([camera[::2, ::2], camera], "does not belong")):
        with pytest.raises(ValueError, match=match):
            pj.export_jpeg2000(levels, tmp_path / "x.tif")

    class FailsMidway:   # a level whose second row of tiles cannot be read
        shape, dtype, ndim = camera.shape, camera.dtype, 2

        def __getitem__(self, key):
            if key[0].start if isinstance(key, tuple) else key.start:
                raise OSError("the store went away")
            return camera[key]

    with pytest.raises(OSError, match="went away"):
        pj.export_jpeg2000([FailsMidway()], tmp_path / "x.tif", tile=256)
    assert not list(tmp_path.iterdir())   # (refused, or removed when it failed)
    # a failed export leaves the file it was to replace as it was
    pj.export_jpeg2000(camera, tmp_path / "x.tif", tile=256)
    before = (tmp_path / "x.tif").read_bytes()
    with pytest.raises(OSError, match="went away"):
        pj.export_jpeg2000([FailsMidway()], tmp_path / "x.tif", tile=256)
    assert (tmp_path / "x.tif").read_bytes() == before and len(list(tmp_path.iterdir())) == 1
    # a successful one keeps the replaced file's permissions, and a symlink
    (tmp_path / "x.tif").chmod(0o600)
    (tmp_path / "link.tif").symlink_to(tmp_path / "x.tif")
    pj.export_jpeg2000(camera[:100], tmp_path / "link.tif", tile=64)
    assert (tmp_path / "link.tif").is_symlink() and (tmp_path / "x.tif").stat().st_mode & 0o777 == 0o600
    with tifffile.TiffFile(tmp_path / "x.tif") as tif:
        np.testing.assert_array_equal(tif.series[0].levels[0].asarray(), camera[:100])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.tif", "x.tif"]
    with pytest.raises(FileNotFoundError, match="no directory"):
        pj.export_jpeg2000(camera, tmp_path / "missing" / "x.tif")
    (tmp_path / "link.tif").unlink()
    (tmp_path / "x.tif").unlink()
    with pytest.raises(ValueError, match="level 0 holds int64"):   # nested lists: one image
        pj.export_jpeg2000([[1, 2], [3, 4]], tmp_path / "x.tif")
    # a float volume: its dtype named first (no choice of plane would mend it)
    with pytest.raises(ValueError, match="level 0 holds float32"):
        pj.export_jpeg2000(real("tlrc_float32_3d"), tmp_path / "x.jp2")
    pj.export_jpeg2000(camera, tmp_path / "f.jp2", psnr=np.float32(40))   # numpy numbers


def test_lossy_exports_are_checked(real, tmp_path):
    """OpenJPEG's PSNR target can miss far (mr2, 0..595 in uint16, at 45 dB
    came back a constant image at 38.8 dB): each lossy tile or image is
    decoded and coded again aiming higher where it is more than PSNR_SLACK
    below the target; values spanning little of their dtype's peak warn, as
    encode() does for its own psnr."""
    from progressive_j2k.export import PSNR_SLACK

    image = real("mr2_uint16")
    direct = imagecodecs.jpeg2k_decode(imagecodecs.jpeg2k_encode(image, level=45,
                                                                 reversible=False))
    assert psnr(direct, image) < 45 - PSNR_SLACK   # (what the check is for)
    levels = pj.open_multiscale(pj.to_zarr(image, str(tmp_path / "m.zarr"), chunks=(256, 256)))
    with pytest.warns(pj.PSNRPeakWarning, match="psnr=45 is measured against uint16's peak"):
        pj.export_jpeg2000(levels, tmp_path / "m.jp2", psnr=45)
    decoded = imagecodecs.jpeg2k_decode((tmp_path / "m.jp2").read_bytes())
    assert psnr(decoded, image) >= 45 - PSNR_SLACK
    with pytest.warns(pj.PSNRPeakWarning):
        pj.export_jpeg2000(levels[1], tmp_path / "m.tif", psnr=45, tile=192)   # a Level: and below
    with tifffile.TiffFile(tmp_path / "m.tif") as tif:
        pyramid = tif.series[0].levels
        assert len(pyramid) == len(levels) - 1
        for stored, level in zip(pyramid, levels[1:]):
            expected = level[:]
            decoded = stored.asarray()
            side = stored.keyframe.tilelength
            for top in range(0, expected.shape[0], side):   # every tile, edge tiles' data only
                for left in range(0, expected.shape[1], side):
                    part = (slice(top, top + side), slice(left, left + side))
                    assert psnr(np.ascontiguousarray(decoded[part]),
                                np.ascontiguousarray(expected[part])) >= 45 - PSNR_SLACK


def test_cli_export(real, tmp_path, capsys):
    image = real("coins")
    pj.to_zarr(image, str(tmp_path / "c.zarr"), chunks=(128, 128))
    assert main(["export", str(tmp_path / "c.zarr"), str(tmp_path / "c.tif"), "--tile", "64"]) == 0
    assert "lossless" in capsys.readouterr().out
    with tifffile.TiffFile(tmp_path / "c.tif") as tif:
        np.testing.assert_array_equal(tif.series[0].levels[0].asarray(), image)
    assert main(["export", str(tmp_path / "c.zarr"), str(tmp_path / "c.jp2"), "--level", "9"]) == 2
    assert "levels 0 to" in capsys.readouterr().err


def test_ome_tiff_records_the_pixel_size(real, tmp_path):
    """A level view's physical spacing (ome_level0, at that level's scale)
    becomes OME-XML's pixel size and every TIFF's resolution tags; without
    units, none is written."""
    physical = {"scale": [0.5, 0.25], "axes": [{"name": "y", "unit": "micrometer"},
                                               {"name": "x", "unit": "micrometer"}]}
    pj.to_zarr(real("camera"), str(tmp_path / "p.zarr"), chunks=(128, 128),
               attributes={"ome_level0": physical})
    pj.export_jpeg2000(str(tmp_path / "p.zarr"), tmp_path / "p.ome.tif", level=1, tile=128)
    with tifffile.TiffFile(tmp_path / "p.ome.tif") as tif:
        pixels = tif.ome_metadata
        assert 'PhysicalSizeX="0.5" PhysicalSizeXUnit="µm"' in pixels
        assert 'PhysicalSizeY="1.0" PhysicalSizeYUnit="µm"' in pixels
    pj.export_jpeg2000(real("camera"), tmp_path / "n.ome.tif", tile=128)
    with tifffile.TiffFile(tmp_path / "n.ome.tif") as tif:
        assert "PhysicalSize" not in tif.ome_metadata
        assert tif.pages[0].tags["ResolutionUnit"].value == 1   # (none)
    # every TIFF's levels carry theirs in resolution tags (pixels per cm),
    # which convert reads back as the pixel size
    pj.export_jpeg2000(str(tmp_path / "p.zarr"), tmp_path / "p.tif", tile=128)
    with tifffile.TiffFile(tmp_path / "p.tif") as tif:
        pages = [level.keyframe for level in tif.series[0].levels]
        assert len(pages) >= 3
        for k, page in enumerate(pages[:3]):
            assert page.tags["ResolutionUnit"].value == 3
            y, x = (page.tags[t].value for t in ("YResolution", "XResolution"))
            assert y[0] / y[1] == pytest.approx(1e4 / (0.5 * 2**k))
            assert x[0] / x[1] == pytest.approx(1e4 / (0.25 * 2**k))
    # sizes TIFF's rationals cannot hold are left out
    tiny = {"scale": [1e-9, 1e-9], "axes": physical["axes"]}
    pj.to_zarr(real("camera")[:64, :64], str(tmp_path / "t.zarr"), attributes={"ome_level0": tiny})
    pj.export_jpeg2000(str(tmp_path / "t.zarr"), tmp_path / "t.tif")
    with tifffile.TiffFile(tmp_path / "t.tif") as tif:
        assert tif.pages[0].tags["ResolutionUnit"].value == 1
    from progressive_j2k.cli import main
    assert main(["convert", str(tmp_path / "p.tif"), str(tmp_path / "back.zarr"), "--quiet"]) == 0
    back = pj.open_multiscale(str(tmp_path / "back.zarr"))
    assert back[0].scale == pytest.approx((0.5, 0.25)) and back[0].units == ("micrometer",) * 2


def _jp2_boxes(data: bytes, start: int = 0, end: int | None = None) -> dict:
    """{box type: content} of the JP2 boxes in data[start:end] (32-bit lengths)."""
    end = len(data) if end is None else end
    boxes = {}
    while start < end:
        length, kind = struct.unpack_from(">I4s", data, start)
        boxes[kind] = data[start + 8:start + length]
        start += length
    return boxes


def test_jp2_records_the_pixel_size(real, tmp_path):
    """A .jp2 of a level whose array records its pixel size in a length unit
    carries it as a capture resolution box in its header box (samples per
    metre, as ISO 15444-1 annex I and Pillow read it); without units, none."""
    physical = {"scale": [0.5, 0.25], "axes": [{"name": "y", "unit": "micrometer"},
                                               {"name": "x", "unit": "micrometer"}]}
    pj.to_zarr(real("camera"), str(tmp_path / "p.zarr"), chunks=(128, 128),
               attributes={"ome_level0": physical})
    pj.export_jpeg2000(str(tmp_path / "p.zarr"), tmp_path / "p.jp2", level=1)
    data = (tmp_path / "p.jp2").read_bytes()
    np.testing.assert_array_equal(imagecodecs.jpeg2k_decode(data),
                                  pj.open_multiscale(str(tmp_path / "p.zarr"))[1][...])
    header = _jp2_boxes(_jp2_boxes(data)[b"jp2h"])
    assert list(header)[0] == b"ihdr"   # (first, as the standard has it)
    rows_n, rows_d, columns_n, columns_d, rows_e, columns_e = struct.unpack(
        ">HHHHbb", _jp2_boxes(header[b"res "])[b"resc"])
    assert rows_n / rows_d * 10.0**rows_e == pytest.approx(1e6)   # 1 um rows at level 1
    assert columns_n / columns_d * 10.0**columns_e == pytest.approx(2e6)
    pil = pytest.importorskip("PIL.Image")
    with pil.open(tmp_path / "p.jp2") as image:   # (dpi: columns, rows)
        assert image.info["dpi"] == pytest.approx((0.0254 * 2e6, 0.0254 * 1e6))
    # any pixel from 65 km down fits 16-bit fractions, within 1e-5
    from progressive_j2k._jp2 import resolution_fields
    for per_metre in (1 / 65535, 3.3, 12345.678, 1 / 0.65e-6, 1e9, 1e130):
        n, d, e = resolution_fields(per_metre)
        assert max(n, d) <= 0xFFFF and n / d * 10.0**e == pytest.approx(per_metre, rel=1e-5)
    assert resolution_fields(1 / 70e3) is None
    assert resolution_fields(1 / 0.3e-6) == (10000, 3, 3)   # exact where a fraction is
    zero = {"scale": [0.0, 0.25], "axes": physical["axes"]}   # (no size: no box, no crash)
    pj.to_zarr(real("camera")[:64, :64], str(tmp_path / "z.zarr"), attributes={"ome_level0": zero})
    pj.export_jpeg2000(str(tmp_path / "z.zarr"), tmp_path / "z.jp2")
    assert b"res " not in _jp2_boxes(_jp2_boxes((tmp_path / "z.jp2").read_bytes())[b"jp2h"])
    pj.export_jpeg2000(real("camera"), tmp_path / "n.jp2")
    assert b"res " not in _jp2_boxes(_jp2_boxes((tmp_path / "n.jp2").read_bytes())[b"jp2h"])


def test_ome_tiff_names_the_channel_it_shows(real, tmp_path):
    """An OME-TIFF of a channel picked on the axis named c carries that
    channel's omero label as its name; a single channel's too; none without
    a label."""
    camera = real("camera")[:128, :128]
    omero = {"channels": [{"label": "DAPI"}, {"label": "GFP"}]}
    pj.to_zarr(np.stack([camera, camera[::-1]]), str(tmp_path / "c.zarr"),
               dimension_names=("c", "y", "x"), attributes={"omero": omero})
    for index, label in enumerate(("DAPI", "GFP")):
        pj.export_jpeg2000(str(tmp_path / "c.zarr"), tmp_path / "c.ome.tif", at={"c": index})
        with tifffile.TiffFile(tmp_path / "c.ome.tif") as tif:
            assert f'Name="{label}"' in tif.ome_metadata
            np.testing.assert_array_equal(tif.asarray(), camera if index == 0 else camera[::-1])
    pj.to_zarr(camera, str(tmp_path / "one.zarr"), attributes={"omero": {"channels": [
        {"label": "T1"}]}})
    pj.export_jpeg2000(str(tmp_path / "one.zarr"), tmp_path / "one.ome.tif")
    with tifffile.TiffFile(tmp_path / "one.ome.tif") as tif:
        assert 'Name="T1"' in tif.ome_metadata
    # a level whose c axis was transformed (halved) holds no channel as such
    four = np.stack([camera, camera[::-1], camera.T, camera[:, ::-1]])
    pj.to_zarr(four, str(tmp_path / "four.zarr"), dimension_names=("c", "y", "x"), axes=(0, 1, 2),
               attributes={"omero": {"channels": [{"label": f"ch{i}"} for i in range(4)]}})
    pj.export_jpeg2000(str(tmp_path / "four.zarr"), tmp_path / "f.ome.tif", level=1, at={"c": 3})
    with tifffile.TiffFile(tmp_path / "f.ome.tif") as tif:
        assert 'Name="ch' not in tif.ome_metadata
    pj.export_jpeg2000(str(tmp_path / "four.zarr"), tmp_path / "f.ome.tif", at={"c": 3})
    with tifffile.TiffFile(tmp_path / "f.ome.tif") as tif:
        assert 'Name="ch3"' in tif.ome_metadata
    pj.to_zarr(camera, str(tmp_path / "none.zarr"))
    pj.export_jpeg2000(str(tmp_path / "none.zarr"), tmp_path / "none.ome.tif")
    with tifffile.TiffFile(tmp_path / "none.ome.tif") as tif:
        assert "Channel" not in tif.ome_metadata or 'Name="' not in tif.ome_metadata.split(
            "<Channel")[1].split(">")[0]


def test_one_plane_of_a_5d_array_exports_as_its_image(real, tmp_path, capsys):
    """An OME-Zarr's (t, c, z, y, x) of one plane: its axes of length 1 are
    left out, lazily, with their pixel sizes, wherever they stand; a stack
    of planes is refused until --at picks one."""
    camera = real("camera")
    physical = {"scale": [1.0, 1.0, 2.0, 0.5, 0.25],
                "axes": [{"name": n, "unit": "micrometer" if n in "zyx" else None}
                         for n in "tczyx"]}
    pj.to_zarr(camera[None, None, None], str(tmp_path / "p.zarr"),
               attributes={"ome_level0": physical})
    assert main(["export", str(tmp_path / "p.zarr"), str(tmp_path / "p.ome.tif")]) == 0
    levels = pj.open_multiscale(str(tmp_path / "p.zarr"))
    with tifffile.TiffFile(tmp_path / "p.ome.tif") as tif:
        assert 'PhysicalSizeX="0.25" PhysicalSizeXUnit="µm"' in tif.ome_metadata
        pyramid = tif.series[0].levels
        assert len(pyramid) == len(levels)
        for stored, level in zip(pyramid, levels):
            np.testing.assert_array_equal(stored.asarray(), level[0, 0, 0])
    # RGB as OME-Zarr lays it out, (t, c, z, y, x): z of one plane between
    # the colour axis and the rows is left out too, and colour moved last
    rgb = real("astronaut")
    ome_rgb = np.ascontiguousarray(np.moveaxis(rgb, -1, 0)[None, :, None])
    pj.to_zarr(ome_rgb, str(tmp_path / "rgb.zarr"), colour_axis=1)
    assert pj.open_multiscale(str(tmp_path / "rgb.zarr"))[0].shape == (1, 3, 1, 512, 512)
    assert main(["export", str(tmp_path / "rgb.zarr"), str(tmp_path / "rgb.tif")]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "rgb.tif"), rgb)
    pj.to_zarr(np.stack([camera, camera[::-1]])[None], str(tmp_path / "s.zarr"))
    assert main(["export", str(tmp_path / "s.zarr"), str(tmp_path / "s.tif")]) == 2
    # named in the array's axes, which --at takes (axis 0 of the plane is axis 1)
    assert ("has shape (1, 2, 512, 512) (axes 1, 2, 3 of it left, shape (2, 512, 512))"
            in (err := capsys.readouterr().err)) and err.rstrip().endswith("along axis 1")
    assert main(["export", str(tmp_path / "s.zarr"), str(tmp_path / "s.tif"), "--at", "1=1"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "s.tif"), camera[::-1])


def test_thin_colour_images_keep_their_one_sample_axis(real, tmp_path):
    """An axis of length 1 is left out only beside more than two others,
    the colour axis aside: an RGB image one sample wide or tall (or a
    coarse level of a thin strip) stays an RGB image (a first version of
    the rule wrote it as a gray image of three columns or rows); a gray
    image with a channel axis of one sample loses that axis."""
    rgb = real("astronaut")
    cases = [((64, 1, 3), -1, None, 0), ((3, 1, 64), 0, None, 0),
             ((3, 8, 256), 0, (3, 8, 256), 3), ((256, 8, 3), -1, None, 3)]
    for i, (shape, colour, chunks, level) in enumerate(cases):
        last = shape[-1] == 3
        source = rgb[:shape[0], :shape[1]] if last else np.moveaxis(
            rgb[:shape[1], :shape[2]], -1, 0)
        pj.to_zarr(np.ascontiguousarray(source), str(tmp_path / f"{i}.zarr"),
                   colour_axis=colour, chunks=chunks)
        pj.export_jpeg2000(str(tmp_path / f"{i}.zarr"), tmp_path / f"{i}.tif", level=level)
        image = pj.open_multiscale(str(tmp_path / f"{i}.zarr"))[level][...]
        np.testing.assert_array_equal(tifffile.imread(tmp_path / f"{i}.tif"),
                                      image if last else np.moveaxis(image, 0, -1))
    for source, expected in ((rgb[:1, :64], rgb[:1, :64]), (rgb[:64, :64, :1], rgb[:64, :64, 0])):
        pj.export_jpeg2000(np.ascontiguousarray(source), tmp_path / "n.tif")
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "n.tif"), expected)


def test_a_plane_of_a_stack_exports_with_at(real, tmp_path, capsys):
    """at= (the command line's --at) picks the plane of a volume as level-0
    indices, each coarser level reading its sample at or before it (its
    positions), along any axis; channels-first colour is moved last;
    bad picks are refused with the axis named."""
    vol = real("anatomical_int16_3d")
    pj.to_zarr(vol, str(tmp_path / "v.zarr"))
    levels = pj.open_multiscale(str(tmp_path / "v.zarr"))
    assert main(["export", str(tmp_path / "v.zarr"), str(tmp_path / "v.tif"), "--at", "0=20"]) == 0
    stored = _pyramid(tmp_path / "v.tif")
    assert len(stored) == len(levels)
    picked = [int(np.searchsorted(level.positions(0), 20, side="right")) - 1 for level in levels]
    assert picked[:4] == [20, 10, 5, 2]
    for image, level, i in zip(stored, levels, picked):
        np.testing.assert_array_equal(image, level[i])
    np.testing.assert_array_equal(stored[0], vol[20])
    # a sagittal plane of level 1, through the Python API: from the levels,
    # or from that Level alone (level-0 indices either way)
    for source, level in [(levels, 1), (levels[1], 0)]:
        pj.export_jpeg2000(source, tmp_path / "s.jp2", level=level, at={-1: 24})
        np.testing.assert_array_equal(
            imagecodecs.jpeg2k_decode((tmp_path / "s.jp2").read_bytes()), levels[1][:, :, 12])
    # channels first: one plane, or the colour image moved last
    rgb = real("astronaut")
    pj.to_zarr(np.ascontiguousarray(np.moveaxis(rgb, -1, 0)), str(tmp_path / "c.zarr"))
    assert main(["export", str(tmp_path / "c.zarr"), str(tmp_path / "c.tif")]) == 0
    assert main(["export", str(tmp_path / "c.zarr"), str(tmp_path / "g.tif"), "--at", "0=1"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "c.tif"), rgb)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "g.tif"), rgb[..., 1])
    capsys.readouterr()
    for picks, message in [("0=33", "axis 0 has indices 0 to 32 (or -33 to -1 from the end), "
                                    "got 33"),
                           ("0=-34", "axis 0 has indices 0 to 32 (or -33 to -1 from the end), "
                                     "got -34"),
                           ("z=1", "no axis is named 'z' (the axes: dim_0, dim_1, dim_2)"),
                           ("3=1", "axis 3 is out of range"),
                           ("0=1,-3=2", "axis 0 is given twice"),
                           ("0=1,0=2", "axis 0 is given twice")]:
        assert main(["export", str(tmp_path / "v.zarr"), str(tmp_path / "x.tif"),
                     "--at", picks]) == 2
        assert f"error: --at: {message}" in capsys.readouterr().err   # (the flag's name)
    assert not (tmp_path / "x.tif").exists()
    with pytest.raises(TypeError, match="integers"):
        pj.export_jpeg2000(vol, tmp_path / "x.tif", at={0: 1.5})
    with pytest.raises(ValueError, match="the source names none"):   # (a numpy array)
        pj.export_jpeg2000(vol, tmp_path / "x.tif", at={"z": 1})
    # the last slice, from the end
    assert main(["export", str(tmp_path / "v.zarr"), str(tmp_path / "e.tif"), "--at", "0=-1"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "e.tif"), vol[-1])
    # the same levels as numpy arrays: the same samples picked (2**k apart)
    pj.export_jpeg2000([level[...] for level in levels], tmp_path / "n.tif", at={0: 20})
    for image, again in zip(stored, _pyramid(tmp_path / "n.tif")):
        np.testing.assert_array_equal(image, again)


def test_three_slices_are_not_taken_for_colour(real, tmp_path, capsys):
    """A stack of three (or four) slices is refused until a plane is picked,
    not exported as an RGB (RGBA) image: only the colour axis the array
    records is moved last."""
    mr = real("mr2_uint16")
    for count in (3, 4):
        stack = np.stack([mr[:512, :512], mr[512:, :512], mr[:512, 512:], mr[512:, 512:]][:count])
        pj.to_zarr(stack, str(tmp_path / f"s{count}.zarr"), overwrite=True)
        assert main(["export", str(tmp_path / f"s{count}.zarr"), str(tmp_path / "s.tif")]) == 2
        assert f"has shape ({count}, 512, 512): " in (err := capsys.readouterr().err)
        assert err.rstrip().endswith("along axis 0")
        assert main(["export", str(tmp_path / f"s{count}.zarr"), str(tmp_path / "s.tif"),
                     "--at", "0=1"]) == 0
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "s.tif"), stack[1])


def _pyramid(path) -> list:
    """Every level of an exported TIFF: its main image and its SubIFDs
    (tifffile's series leave out a 1 x 1 level)."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        levels = [page.asarray()]
        for k, offset in enumerate(page.subifds or ()):
            tif.filehandle.seek(offset)
            levels.append(tifffile.TiffPage(tif, index=(0, k)).asarray())
    return levels


def test_samples_transformed_with_the_image_export_one_level(real, tmp_path):
    """RGBA whose alpha shares the colour's detail is coded with its sample
    axis transformed too (_axes.choose_axes), so its coarser levels hold 2
    and 1 samples: one level still exports as a codestream (its coarser
    levels were checked too: refused), and a pyramid says why it cannot
    be one (its hint named a plane along axis 0)."""
    astronaut = real("astronaut")
    rgba = np.concatenate([astronaut, astronaut.mean(axis=2, keepdims=True).astype(np.uint8)],
                          axis=2)
    levels = pj.open_multiscale(pj.to_zarr(rgba, str(tmp_path / "r.zarr")))
    assert [level.shape[2] for level in levels][:3] == [4, 2, 1]
    pj.export_jpeg2000(levels, tmp_path / "r.jp2")
    np.testing.assert_array_equal(imagecodecs.jpeg2k_decode((tmp_path / "r.jp2").read_bytes()),
                                  rgba)
    with pytest.raises(ValueError, match=r"level 1 has shape \(256, 256, 2\), 2 samples where the "
                                         r"finest exported level has 4: .* axes=\(0, 1\)"):
        pj.export_jpeg2000(levels, tmp_path / "r.tif")


# ---- JPEG 2000 files as convert's input: the other half of the interchange

@pytest.mark.parametrize("name, suffix", [("astronaut", ".jp2"), ("mr2_uint16", ".j2k"),
                                          ("ct693_int16", ".jp2"), ("camera", ".j2c")])
def test_convert_reads_jpeg2000_files_bit_for_bit(real, tmp_path, name, suffix):
    """A lossless JPEG 2000 file (OpenJPEG's, or an HTJ2K codestream, which
    OpenJPEG decodes too) converts to an array holding its pixels exactly;
    a lossy one to what OpenJPEG decodes of it."""
    image = real(name)
    files = {"reversible": imagecodecs.jpeg2k_encode(image, codecformat=suffix[1:4].replace(
        "j2c", "j2k"), reversible=True, level=0)}
    if suffix == ".j2c":
        files["htj2k"] = imagecodecs.htj2k_encode(image)
    else:
        files["lossy"] = imagecodecs.jpeg2k_encode(image, codecformat=suffix[1:], level=40)
    for kind, data in files.items():
        (tmp_path / f"{kind}{suffix}").write_bytes(data)
        assert main(["convert", str(tmp_path / f"{kind}{suffix}"), str(tmp_path / f"{kind}.zarr"),
                     "--quiet"]) == 0
        stored = zarr.open_array(str(tmp_path / f"{kind}.zarr"))[...]
        expected = image if kind != "lossy" else imagecodecs.jpeg2k_decode(data)
        assert stored.dtype == image.dtype
        np.testing.assert_array_equal(stored, expected)
    if "lossy" in files:   # (lossy really is: the test would not see a mix-up otherwise)
        assert not np.array_equal(imagecodecs.jpeg2k_decode(files["lossy"]), image)


def _tile_parts(codestream: bytes) -> list:
    """(start, end) of each tile-part of a codestream, by its SOT's length."""
    at = 2
    while codestream[at:at + 2] != b"\xff\x90":
        at += 2 + struct.unpack_from(">H", codestream, at + 2)[0]
    parts = []
    while codestream[at:at + 2] == b"\xff\x90":
        length = struct.unpack_from(">I", codestream, at + 6)[0]
        parts.append((at, at + length))
        at += length
    return parts


def test_jpeg2000_inputs_missing_tiles_are_refused(real, tmp_path, capsys):
    """OpenJPEG decodes a tile with no data as zeros, without an error: a
    codestream that lost a tile-part, one cut at a tile's end (an EOC after
    it, as a careless copy writes), and an untiled one whose size marker
    was damaged into a larger image (its tile size now covers a sliver)
    are refused before decoding; the whole tiled file converts exactly."""
    image = real("camera")[:128, :160]
    tiled = imagecodecs.htj2k_encode(image, level=0, reversible=True, tile=(32, 32))
    parts = _tile_parts(tiled)
    assert len(parts) == 20
    untiled = bytearray(imagecodecs.jpeg2k_encode(image, codecformat="j2k", reversible=True,
                                                  level=0))
    struct.pack_into(">I", untiled, 8, 32000)   # Xsiz: 160 -> 32000 columns
    short_box = bytearray(imagecodecs.jpeg2k_encode(image, codecformat="jp2", reversible=True,
                                                    level=0))
    at = short_box.index(b"jp2c") - 4
    struct.pack_into(">I", short_box, at, struct.unpack_from(">I", short_box, at)[0] - 1)
    cases = {
        "whole.jhc": (tiled, None),
        "lost_part.jhc": (tiled[:parts[5][0]] + tiled[parts[5][1]:], "lacks 1 of its 20 tiles"),
        "cut_at_tile.jhc": (tiled[:parts[11][0]] + b"\xff\xd9", "lacks 9 of its 20 tiles"),
        "wider.j2k": (bytes(untiled), "lacks 199 of its 200 tiles"),
        "long_part.jhc": (tiled[:parts[19][0] + 6] + struct.pack(">I", 10**6) +
                          tiled[parts[19][0] + 10:], "cut short"),
        # a part renumbered as a tile's second: its first lost (parts count from 0)
        "second_part.jhc": (tiled[:parts[3][0] + 10] + b"\x01" + tiled[parts[3][0] + 11:],
                            "is part 1 of tile 3, which has 0 before it"),
        # a JP2 codestream box one byte short, into EOC: the data is whole
        # (OpenJPEG reads on to the file's end)
        "short_box.jp2": (short_box, None),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        status = main(["convert", str(tmp_path / name), str(tmp_path / f"{name}.zarr"), "--quiet"])
        err = capsys.readouterr().err
        if reason is None:
            assert status == 0, err
            np.testing.assert_array_equal(zarr.open_array(str(tmp_path / f"{name}.zarr"))[...],
                                          image, err_msg=name)
        else:
            assert status == 2 and reason in err, (name, err)
            assert not (tmp_path / f"{name}.zarr").exists()


def test_jp2_pixel_size_comes_back_through_convert(real, tmp_path):
    """export writes a level's pixel size in a .jp2's capture resolution
    box; convert reads it back as ome_level0, in one length unit for both
    axes; a .jp2 without the box, or a raw codestream, has no physical axes."""
    for scale, unit, expected in (([0.5, 0.25], "micrometer", ([1.0, 0.5], "micrometer")),
                                  ([10.0, 10.0], "meter", ([20.0, 20.0], "meter")),
                                  ([0.3, 0.3], "millimeter", ([0.6, 0.6], "millimeter")),
                                  ([0.04, 0.04], "millimeter", ([80.0, 80.0], "micrometer"))):
        physical = {"scale": scale, "axes": [{"name": "y", "unit": unit},
                                             {"name": "x", "unit": unit}]}
        pj.to_zarr(real("camera"), str(tmp_path / "p.zarr"), chunks=(128, 128),
                   attributes={"ome_level0": physical}, overwrite=True)
        pj.export_jpeg2000(str(tmp_path / "p.zarr"), tmp_path / "p.jp2", level=1)
        assert main(["convert", str(tmp_path / "p.jp2"), str(tmp_path / "back.zarr"), "--quiet",
                     "--overwrite"]) == 0
        back = pj.open_multiscale(str(tmp_path / "back.zarr"))
        assert back[0].scale == pytest.approx(tuple(expected[0]), rel=1e-5)
        assert back[0].units == (expected[1],) * 2
        np.testing.assert_array_equal(back[0][...], pj.open_multiscale(str(tmp_path / "p.zarr"))[1][...])
    (tmp_path / "plain.jp2").write_bytes(imagecodecs.jpeg2k_encode(real("astronaut"), codecformat="jp2",
                                                                   reversible=True, level=0))
    assert main(["convert", str(tmp_path / "plain.jp2"), str(tmp_path / "plain.zarr"), "--quiet"]) == 0
    assert "ome_level0" not in zarr.open_array(str(tmp_path / "plain.zarr")).attrs


def test_damaged_jpeg2000_inputs_are_refused(real, tmp_path, capsys):
    """A JPEG 2000 file cut short, with a box or size marker that lies, or
    that is no JPEG 2000 at all is refused with its reason (exit status 2),
    never converted as what OpenJPEG makes of it; a size marker claiming
    more than the machine holds is refused before anything is decoded."""
    image = real("camera")
    jp2 = imagecodecs.jpeg2k_encode(image, codecformat="jp2", reversible=True, level=0)
    j2k = imagecodecs.jpeg2k_encode(image, codecformat="j2k", reversible=True, level=0)
    siz = j2k.index(b"\xff\x51")
    huge = bytearray(j2k)
    struct.pack_into(">II", huge, siz + 6, 2**31, 2**31)   # Xsiz, Ysiz
    long_box = bytearray(jp2)
    struct.pack_into(">I", long_box, 12, 2**31)   # the file type box's length
    cases = {
        "cut_in_data.jp2": (jp2[:len(jp2) // 2], "claims"),
        "cut_in_data.j2k": (j2k[:len(j2k) // 2], "cut short"),
        "cut_in_boxes.jp2": (jp2[:40], "JP2 box"),
        "cut_in_siz.j2k": (j2k[:20], "size marker"),
        "huge.j2k": (bytes(huge), "more than half this machine's memory"),
        "long_box.jp2": (bytes(long_box), "claims 2147483648 bytes"),
        "text.jp2": (b"not an image at all", "not JPEG 2000"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert main(["convert", str(tmp_path / name), str(tmp_path / f"{name}.zarr")]) == 2, name
        assert reason in capsys.readouterr().err, name
        assert not (tmp_path / f"{name}.zarr").exists()
