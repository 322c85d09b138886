import pytest
import torch
from PIL import Image

from deepraft.core.data import find_images
from deepraft.training.datasets import PhotoCrops, StepBatches
from deepraft.training.prepare import prepare_folder
from tests.conftest import synthetic_photo


def test_find_images_layouts(tmp_path):
    flickr = tmp_path / "mirflickr"
    (flickr / "meta" / "tags").mkdir(parents=True)
    for i in (2, 10, 1):
        synthetic_photo(i, 40, 30).save(flickr / f"im{i}.jpg")
    (flickr / "meta" / "tags" / "tags1.txt").write_text("x")
    assert [f.name for f in find_images(tmp_path)] == ["im1.jpg", "im2.jpg", "im10.jpg"]
    met = tmp_path / "metfaces"
    (met / "images").mkdir(parents=True)
    (met / "unprocessed").mkdir()
    synthetic_photo(5, 32, 32).save(met / "images" / "image-0.png")
    synthetic_photo(6, 32, 32).save(met / "unprocessed" / "raw.png")
    assert [f.name for f in find_images(met)] == ["image-0.png"]
    with pytest.raises(FileNotFoundError):
        find_images(tmp_path / "nothing")


def test_crops_are_deterministic_per_key(photo_dir):
    files = find_images(photo_dir)
    ds = PhotoCrops(files, image_size=32, seed=3)
    a, b = ds[(5, 1)], PhotoCrops(files, image_size=32, seed=3)[(5, 1)]
    assert a.shape == (3, 32, 32) and a.dtype == torch.uint8
    assert torch.equal(a, b)
    assert not torch.equal(ds[(5, 1)], ds[(5, 2)])


def test_bad_training_file_is_skipped(tmp_path):
    synthetic_photo(0).save(tmp_path / "good.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    ds = PhotoCrops(find_images(tmp_path), image_size=16)
    with pytest.warns(UserWarning, match="bad.jpg"):
        crops = [ds[(s, 0)] for s in range(12)]
    assert all(c.shape == (3, 16, 16) for c in crops)


def test_step_batches_rank_offsets():
    assert list(StepBatches(3, 5, 2, rank=1)) == [[(3, 2), (3, 3)], [(4, 2), (4, 3)]]


def test_prepare(tmp_path, photo_dir):
    (photo_dir / "broken.jpg").write_bytes(b"")
    try:
        report = prepare_folder(photo_dir, tmp_path / "out", size=40)
    finally:
        (photo_dir / "broken.jpg").unlink()
    assert len(report.failed) == 1 and "broken.jpg" in report.failed[0]
    assert len(report.written) == 9
    img = Image.open(tmp_path / "out" / "sub" / "nested.png")
    assert img.size == (40, 40)
    with pytest.raises(ValueError, match="inside the input"):
        prepare_folder(photo_dir, photo_dir / "x", size=40)
