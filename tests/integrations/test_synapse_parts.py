"""The Synapse module's parts that need no homeserver: its config, the store of pictures sent
"only for you", which media an event refers to, and the picture sniffing of large uploads."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from deepraft.integrations.synapse import ModuleConfig, ProtectedMedia, looks_like_a_picture, media_ids


def test_config_needs_a_state_file_and_names_unknown_keys(tmp_path):
    cfg = ModuleConfig.parse({"state_db": str(tmp_path / "s.db"), "fail_open": True})
    assert cfg.fail_open and cfg.model == "default" and cfg.service_url is None
    with pytest.raises(ValueError, match="state_db .* is required"):
        ModuleConfig.parse({})
    with pytest.raises(ValueError, match="unknown key\\(s\\) fail_closed"):
        ModuleConfig.parse({"state_db": "x", "fail_closed": True})


def test_an_allowance_is_claimed_once_and_expires(tmp_path):
    store = ProtectedMedia(tmp_path / "state" / "s.db")
    store.allow("aa", "@u:hs", "!room:hs", ttl_s=60)
    assert store.claim("bb", "m0") is None  # other bytes
    assert store.claim("aa", "m1") == "!room:hs" and store.room_of("m1") == "!room:hs"
    assert store.claim("aa", "m2") is None and store.room_of("m2") is None  # used up
    store.allow("cc", "@u:hs", "!room:hs", ttl_s=0.01)
    time.sleep(0.05)
    assert store.claim("cc", "m3") is None  # expired
    assert ProtectedMedia(tmp_path / "state" / "s.db").room_of("m1") == "!room:hs"  # on disk


def test_media_ids_of_an_event_are_its_local_file_and_thumbnail():
    content = {
        "msgtype": "m.image",
        "url": "mxc://hs/abc",
        "info": {"thumbnail_url": "mxc://hs/thumb", "thumbnail_file": {"url": "mxc://other/x"}},
    }
    assert media_ids(content, "hs") == ["abc", "thumb"]
    assert media_ids({"file": {"url": "mxc://hs/enc"}}, "hs") == ["enc"]  # an encrypted attachment
    assert media_ids({"url": "https://example.org/x.png"}, "hs") == []


def test_pictures_are_told_from_other_files_by_their_header():
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(buf, "PNG")
    assert looks_like_a_picture(buf.getvalue()[:100])
    assert not looks_like_a_picture(b"\x00\x00\x00\x18ftypmp42 a video")
