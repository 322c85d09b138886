"""Pinned outputs of the benign edits: the evaluation grid, calibration's variants and the demo's
forwards give the same pixels for the same seed as before the edits moved into one registry
(``deepraft.edits``). Hashes of the decoded RGB pixels and their shape; recorded on Pillow's
bundled codecs and font."""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from deepraft.edits.grids import GRID, conditions
from deepraft.evaluation.calibrate import clean_variants
from tests.conftest import synthetic_photo


def digest(img: Image.Image) -> str:
    a = np.ascontiguousarray(np.asarray(img.convert("RGB")))
    return hashlib.sha256(a.tobytes() + str(a.shape).encode()).hexdigest()[:16]


EVAL_PINS = {
    "none": "e90bc067be0a6cfe",
    "jpeg 90": "9daffd61fcdebaca",
    "jpeg 70": "5e77228be86bdbb1",
    "jpeg 50": "7741110da7fe4efb",
    "jpeg 30": "2932cb1aaf4a614c",
    "jpeg 10": "7bcd2a470a5723ff",
    "webp 80": "f6c8b16f09d822a2",
    "webp 50": "17e6985ab90de87e",
    "resize 0.75": "fec106932bebcd67",
    "resize 0.5": "2ec2356a78eb7cbd",
    "resize 0.25": "b45742e289a6a261",
    "crop 0.8": "a918fd5640c7432e",
    "crop 0.5": "78cfe160a1927213",
    "crop 0.25": "48f1b75bbf6a0124",
    "rotate 5": "263c079351d25c51",
    "rotate 10": "58679f7ee89eb133",
    "rotate 15": "f6eaff46dfd415c2",
    "rotate 30": "7b51e0190c3ed213",
    "rotate 45": "674d0efae4d79c8e",
    "perspective 0.1": "b061434cf56306b0",
    "perspective 0.2": "75c79a27f0d958b3",
    "perspective 0.3": "d472640336fa74e4",
    "gaussian_blur 1": "7bba2bb0923b3627",
    "gaussian_blur 2": "e7189f7d8d885e17",
    "gaussian_blur 3": "1d7afb46aa68f444",
    "defocus 2": "6ffad5889eae19f8",
    "defocus 4": "e926b0c442f0527b",
    "noise 0.02": "7c2c8c7dd0a0081c",
    "noise 0.05": "3b9c956b0dc979bf",
    "noise 0.1": "a54d7667c1267f0d",
    "brightness 0.5": "999c5ef2bd06cfa2",
    "brightness 0.7": "8cdfb126ab0c9237",
    "brightness 1.3": "2046ed0bff53927b",
    "brightness 1.5": "61195bc6a868f037",
    "brightness 2.0": "9e056590fb2b1f0b",
    "contrast 0.5": "cdea2a1286a043d9",
    "contrast 0.7": "4eabfae6e1c7c811",
    "contrast 1.3": "06e07ac6f7761826",
    "contrast 1.5": "7afc62928a603142",
    "contrast 2.0": "7f5c58165a4a39b4",
    "saturation 0.0": "ce123b2e96b45b17",
    "saturation 0.5": "f51de47d60a24362",
    "saturation 1.5": "6ed6609c20dfbb92",
    "saturation 2.0": "dc659cc903466656",
    "hue -0.2": "0c7f9561e41e8f09",
    "hue -0.1": "96206fd32115a43f",
    "hue 0.1": "be6a1fac8e3bafac",
    "hue 0.2": "3b86a071053626e5",
    "grayscale": "ce123b2e96b45b17",
    "hflip": "5d5e07877158e585",
    "screenshot": "e5a355d1515c2347",
    "combined": "0a5e0305bd1c9dbd",
    "vflip": "f371d84884f56a5b",
    "rot90": "61f58053cbab574d",
    "rot180": "d9529365af6c5657",
    "rot270": "185c945e127f8af3",
    "rotate_corners 5": "9e694dee85c6b609",
    "rotate_corners 10": "def930d4fe096bf4",
    "rotate_corners 15": "9f0997344d59b18a",
    "rotate_corners 30": "b2facc470eedafa4",
    "rotate_expand 5": "9d43b34adbbf4c82",
    "rotate_expand 15": "4dc76736f91502e1",
    "rotate_expand 30": "cb429dafdd051da5",
    "stretch 0.1": "95c6067f0b686cc3",
    "stretch 0.2": "ec9a1ebad84b2a9d",
    "pad 0.1": "67193d9006e94948",
    "pad 0.2": "d7955b61737ad251",
    "pad 0.3": "a2d25e61e56bc4ac",
    "collage 0.5": "3a089355ddb7efdf",
    "stickers 0.15": "9d73e4c3d1eb0d79",
    "caption 0.15": "a792235530bc1947",
    "recapture 1.0": "2340b6909ee88783",
    "chain hflip+pad 0.2": "12f672535a0b83d2",
    "chain rotate_corners 10+crop 0.5": "997f1e7ba95127d0",
    "chain collage 0.5+jpeg 70": "256bc1fa9e43ac08",
    "chain recapture 1.0+hflip": "11b28a233cebbfc2",
    "chain rot90+jpeg 70": "81839c9c6f47620b",
    "chain stickers 0.15+resize 0.5": "101986d6f8e81848",
    "messenger": "5e77228be86bdbb1",
    "resize 2.0": "45c00cc19ef0eb4d",
    "resize 1.5": "0bd5fff7ee87afe7",
    "crop 0.64": "e90b6d9d61861f97",
    "crop 0.36": "9d4ad8368bdf62d5",
    "crop 0.16": "c1eec0f1b6911811",
    "crop 0.1": "d0c92d64e802b588",
    "rotate 20": "4f256f6811c5a4aa",
    "rotate 25": "7f59c46ce54adc2e",
    "rotate 35": "ddb2528e1f8367a5",
    "rotate 40": "89f5c355502123d3",
    "gamma 0.5": "eb659b87adcdd178",
    "gamma 0.7": "ad6a072ccf904d8c",
    "gamma 1.5": "6bfd83b8e1e15175",
    "gamma 2.0": "b06a2b630a8c0b71",
    "phone_screenshot": "d39ebdf4ff07ad66",
    "rotate_corners 20": "b75a90d70eae9cc5",
    "rotate_corners 25": "a7dd3a0e30f27628",
    "rotate_corners 35": "d44708a77424ada8",
    "rotate_corners 40": "fb2a825b94e66e58",
    "rotate_corners 45": "5f7d56901db00c74",
    "paste 0.7": "540b588bc0f5b125",
    "paste 0.5": "aab2e8659ea566d4",
    "paste 0.35": "bebf489bf5a6d2ed",
    "photo_grid": "5ca62def13f9e219",
    "chain crop 0.5+messenger": "dbac655b139818e8",
    "chain crop 0.25+messenger": "c154c93fdaeaa1c7",
    "chain crop 0.1+messenger": "525f1ed61814025d",
    "chain crop 0.36+rotate 7+messenger": "4c80e309e97a2dea",
}
"""Digests of every grid condition applied to ``synthetic_photo(3, 97, 75)`` with
``default_rng(1000 + i)``, ``i`` the condition's place in this dict: the conditions of the first
grid come first, in their old order, and those added since (stamp v3's crops, angles, pastes,
messenger, gamma, phone screenshot; scene edits on generated scenery) after them, so adding a
condition never changes another's pin."""

CALIBRATION_PINS = [
    "f83fbdc40c9b0521",
    "463530d264d9be7b",
    "4f040b4bb9123abd",
    "7fe9be5fef20da66",
    "fbd6bf6094bc6c69",
    "62314dc818e03001",
    "2e093f8f98a7566c",
    "750bcbc418e2888b",
    "8854cae0255f7347",
    "d2c3d4b327b9c90e",
    "c1f4b8de18703422",
    "0a7ecb795931ed3a",
    "f46a2a051a547d8c",
    "246685a02c4d2d37",
    "c8f76f94aec5e3ec",
    "a212901b5a6b9aa2",
    "9b59659154ef40d7",
    "f3ece0255d3b7f7f",
    "224251dd898e9708",
    "411474d2d554a86c",
    "a212901b5a6b9aa2",
    "7b9d35211c255c2d",
    "9938c02d25967098",
    "049b33420d4c6c0b",
    "1711eacdff6d65aa",
    "4d9b6b050f727c6e",
    "cca46596f540092b",
    "2e7fa9cfaa800b60",
    "75df63e408c4ef05",
    "7767559973515ac7",
    "ec3623b318f88213",
    "fa7d2007548ee660",
    "695a1214bb690c5b",
    "9f93a261e22fe692",
    "4f33251cfc03b189",
    "df9578e9cec34ecc",
    "aaf3a11aac215e77",
    "f83fbdc40c9b0521",
    "5d27e7e15d760351",
    "a5518246ff853e52",
]
"""Digests of ``clean_variants(synthetic_photo(1, 121, 91), 40, seed=7)``."""

DEMO_PINS = {"JPEG75": "955e3d58ca1f8d3d", "crop64%": "3ae18c5c0d686a36", "half-size": "3c3e8a3be97286f2"}
"""Digests of the demo's forwards of ``synthetic_photo(3, 97, 75)``. One changed on purpose when the
demo moved onto the registry: half size now rounds an odd side as the grid's ``resize 0.5`` does
(``round(w / 2)``, was ``w // 2``), at most one pixel of size on odd sides."""


def test_the_eval_grid_gives_the_pinned_pixels():
    img = synthetic_photo(3, 97, 75)
    by_label = {c.label: c for c in conditions(GRID)}
    assert set(by_label) == set(EVAL_PINS)
    got = {
        label: digest(by_label[label].apply(img, np.random.default_rng(1000 + i))) for i, label in enumerate(EVAL_PINS)
    }
    assert got == EVAL_PINS


def test_calibration_variants_give_the_pinned_pixels():
    got = [digest(v) for v in clean_variants(synthetic_photo(1, 121, 91), 40, seed=7)]
    assert got == CALIBRATION_PINS
    assert len(set(got)) > 30  # the variants differ from each other (a few draws may coincide)


def test_demo_forwards_give_the_pinned_pixels():
    from deepraft.apps.demo import FORWARDS, forward

    img = synthetic_photo(3, 97, 75)
    assert {label: digest(forward(img, label)) for label in FORWARDS} == DEMO_PINS
