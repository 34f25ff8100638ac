import io
import tarfile

import numpy as np
import pytest
from PIL import Image

import onebit.data as data
from onebit.data import imagenette
from onebit.data.registry import IMAGENETTE_WNIDS

VAL = "imagenette/imagenette2-224-thunderinfy-val.tar.gz"
# val counts per sorted wnid, from shared/datasets/README.md
VAL_COUNTS = [387, 395, 357, 386, 409, 394, 389, 419, 399, 390]


def test_imagenette_val_counts_shapes_dtypes(imagenette_val64):
    x, y = imagenette_val64
    assert x.shape == (3925, 64, 64, 3) and x.dtype == np.uint8
    assert y.shape == (3925,) and y.dtype == np.int64
    assert np.bincount(y, minlength=10).tolist() == VAL_COUNTS
    # round-robin class order: the first 3570 (= 10 x 357, the smallest class) alternate
    np.testing.assert_array_equal(y[:3570], np.arange(3570) % 10)


def test_imagenette_first_image_is_bilinear_resize_of_first_file(datasets_root, imagenette_val64):
    x, _ = imagenette_val64
    prefix = f"imagenette2-224-thunderinfy/val/{IMAGENETTE_WNIDS[0]}/"
    with tarfile.open(datasets_root / VAL, "r:gz") as tf:
        names = sorted(m.name for m in tf.getmembers() if m.name.startswith(prefix)
                       and m.isfile())
        raw = tf.extractfile(names[0]).read()
    im = Image.open(io.BytesIO(raw)).convert("RGB")
    assert im.size == (224, 224)
    want = np.asarray(im.resize((64, 64), Image.BILINEAR))
    np.testing.assert_array_equal(x[0], want)


def test_imagenette_resize_square_center_and_gray():
    from onebit.data.imagenette import resize_square

    # 30x20 (w x h) image: the central 20x20 square is kept, then resized
    a = np.zeros((20, 30), np.uint8)
    a[:, 5:25] = 200  # exactly the central square
    out = resize_square(Image.fromarray(a, "L"), 10)
    assert out.shape == (10, 10, 3) and out.dtype == np.uint8
    assert (out == 200).all()  # no black border: the side stripes were cropped away
    rgb = resize_square(Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)), 8)
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])  # gray -> RGB copies the channel
    np.testing.assert_array_equal(rgb[..., 0], np.arange(64).reshape(8, 8))


def _jpeg(color, size=(40, 30), mode="RGB"):
    buf = io.BytesIO()
    color = color[1] if mode == "L" else color
    Image.new(mode, size, color).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _official_tree():
    """A tiny archive in the official imagenette2-160.tgz layout: 3 classes, 2 + 1 images."""
    files = {}
    for k, wnid in enumerate(IMAGENETTE_WNIDS[:3]):
        for j in range(2 if k < 2 else 1):
            files[f"imagenette2-160/train/{wnid}/{wnid}_{j}.JPEG"] = _jpeg((80 * k, 0, 0))
        files[f"imagenette2-160/val/{wnid}/ILSVRC2012_val_{k}.JPEG"] = _jpeg((0, 80 * k, 0), mode="L" if k == 2 else "RGB")
    files["imagenette2-160/noisy_imagenette.csv"] = b"path,noisy_labels_0\n"
    return files


def test_imagenette_official_tgz_layout(tmp_path):
    path = tmp_path / "imagenette2-160.tgz"
    with tarfile.open(path, "w:gz") as tf:
        for name, raw in _official_tree().items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))
    src = imagenette.TarSource(path, "imagenette2-160")
    x, y = src.decode(16, "train")["train"]
    assert x.shape == (5, 16, 16, 3)
    assert y.tolist() == [0, 1, 2, 0, 1]  # round robin over sorted wnids
    assert abs(int(x[2, ..., 0].mean()) - 160) <= 3  # class 2 was drawn with red = 160
    xv, yv = src.decode(16, "test")["test"]
    assert yv.tolist() == [0, 1, 2] and xv.shape == (3, 16, 16, 3)


def test_imagenette_extracted_folder(tmp_path):
    root = tmp_path / "imagenette2-160"
    for name, raw in _official_tree().items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(raw)
    src = imagenette.FolderSource(root, "test")
    xv, yv = src.decode(8, "test")["test"]
    assert yv.tolist() == [0, 1, 2] and xv.shape == (3, 8, 8, 3)
    # the folder is not complete Imagenette: resolve() refuses it with a clear message
    with pytest.raises(data.DatasetFormatError, match="holds 3 files, Imagenette v2 val has 3925"):
        imagenette.resolve("imagenette", "test", [tmp_path], 64)


def test_imagenette_unknown_class_folder_rejected(tmp_path):
    path = tmp_path / "x.tar"
    with tarfile.open(path, "w") as tf:
        raw = _jpeg((1, 2, 3))
        info = tarfile.TarInfo("imagenette2-160/val/n99999999/a.JPEG")
        info.size = len(raw)
        tf.addfile(info, io.BytesIO(raw))
    with pytest.raises(data.DatasetFormatError, match="unknown class folder 'n99999999'"):
        imagenette.TarSource(path, "t").decode(8, "test")


def test_imagenette_missing_names_files(tmp_path, tmp_cache):
    with pytest.raises(data.DatasetNotFoundError) as e:
        data.load("imagenette", "val", root=tmp_path, size=96)
    msg = str(e.value)
    assert "imagenette2-160.tgz" in msg and "imagenette2-224-thunderinfy-val.tar.gz" in msg
