"""Decoding uploads: what we refuse, what we accept and how, and surviving a dying worker.

Every input is generated in memory by tests/corpus.py. Most tests go through
decode(), the isolated worker that ingestion uses.
"""

from __future__ import annotations

import io
import os
import signal
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import ExifTags, Image, ImageFile

from donations import decoding, imaging, jpeg, worker
from donations.decoding import Decoded, Rejected
from tests import corpus


def refusal(data: bytes) -> Rejected:
    with pytest.raises(Rejected) as caught:
        decoding.decode(data)
    return caught.value


def opened(rendition: decoding.Rendition) -> Image.Image:
    image = Image.open(io.BytesIO(rendition.data))
    image.load()
    return image


def renditions(decoded: Decoded) -> list[decoding.Rendition]:
    return [decoded.master, decoded.display, decoded.thumb]


def png_with_a_broken_pixel_stream(width: int = 64, height: int = 32) -> bytes:
    """A PNG whose chunks and CRCs are sound but whose zlib stream breaks half-way.

    The top half of the rows inflates; then comes a deflate block of the
    reserved type 3, which zlib refuses ("invalid block type").
    """
    rows = b"".join(
        bytes([0]) + bytes(value for x in range(width) for value in (x * 4, y * 8, 128))
        for y in range(height)
    )
    deflate = zlib.compressobj()
    stream = deflate.compress(rows[: len(rows) // 2]) + deflate.flush(zlib.Z_FULL_FLUSH)
    stream += b"\x07"  # BFINAL=1, BTYPE=11
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + corpus.png_chunk(b"IHDR", header)
        + corpus.png_chunk(b"IDAT", stream)
        + corpus.png_chunk(b"IEND", b"")
    )


class TestRefusals:
    def test_it_refuses_zero_bytes_as_empty(self):
        rejected = refusal(b"")
        assert (rejected.code, rejected.message) == ("empty", "The file is empty.")

    def test_it_refuses_the_first_half_of_a_jpeg_as_truncated(self):
        rejected = refusal(corpus.truncated(corpus.jpeg()))
        assert rejected.code == "truncated"
        assert rejected.message == "The file is cut off (truncated); please upload it again."
        assert rejected.status == 422

    def test_it_refuses_the_first_half_of_a_png_and_a_webp_as_truncated(self):
        for fmt in ("PNG", "WEBP"):
            data = corpus.encode(corpus.scene(), fmt)
            assert refusal(corpus.truncated(data)).code == "truncated", fmt

    def test_it_refuses_a_png_claiming_20000_by_20000_pixels(self):
        rejected = refusal(corpus.png_claiming(20000, 20000))
        assert rejected.code == "too_many_pixels"
        assert "400 megapixels" in rejected.message
        assert "the limit is 50 megapixels" in rejected.message

    def test_it_refuses_a_png_claiming_10000_by_10000_pixels(self):
        # 100 MP is under Pillow's own error threshold: only its warning fires,
        # which the worker turns into an error.
        rejected = refusal(corpus.png_claiming(10000, 10000))
        assert rejected.code == "too_many_pixels"
        assert "100 megapixels" in rejected.message

    def test_it_refuses_a_picture_over_the_configured_pixel_limit(self, settings):
        settings.IMAGE_MAX_PIXELS = 1000
        assert refusal(corpus.jpeg(40, 40)).code == "too_many_pixels"
        assert isinstance(decoding.decode(corpus.jpeg(30, 30)), Decoded)

    def test_it_says_the_size_of_a_picture_over_the_limit(self, settings):
        settings.IMAGE_MAX_PIXELS = 1000
        with pytest.raises(Rejected) as caught:
            imaging.process(corpus.jpeg(40, 40))
        assert caught.value.message == (
            "This picture is 40 × 40 pixels (0.0016 megapixels); the limit is 0.001 megapixels."
        )

    @pytest.mark.parametrize("name", sorted(corpus.other_formats()))
    def test_it_refuses_other_formats_and_names_them(self, name):
        rejected = refusal(corpus.other_formats()[name])
        assert rejected.code == "unsupported_format"
        assert name in rejected.message
        assert rejected.message.endswith("; we accept JPEG, PNG and WebP.")

    def test_it_refuses_a_png_whose_pixel_data_does_not_decode_as_corrupt(self):
        data = png_with_a_broken_pixel_stream()
        # Pillow refuses it, and so does PNG's getexif(), which loads the
        # pixels itself: reading the orientation first used to swallow that.
        with pytest.raises(OSError, match="broken data stream"):
            Image.open(io.BytesIO(data)).load()
        with pytest.raises(OSError, match="broken data stream"):
            Image.open(io.BytesIO(data)).getexif()
        rejected = refusal(data)
        assert (rejected.code, rejected.status) == ("corrupt", 422)
        assert rejected.message.startswith("The picture data in this file is damaged")
        with pytest.raises(Rejected, match="damaged"):
            imaging.process(data)

    def test_reading_the_orientation_first_cannot_hide_a_decoding_error(self):
        image = Image.open(io.BytesIO(png_with_a_broken_pixel_stream()))
        with pytest.raises(OSError, match="broken data stream"):
            imaging._orientation(image)

    def test_it_decodes_nothing_while_pillow_is_told_to_load_truncated_images(self, monkeypatch):
        # LOAD_TRUNCATED_IMAGES would let load() pass the damaged PNG.
        monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
        for data in (png_with_a_broken_pixel_stream(), corpus.jpeg(32, 32)):
            with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
                imaging.process(data)

    def test_it_refuses_random_bytes(self):
        rejected = refusal(corpus.random_bytes())
        assert rejected.code == "not_an_image"
        assert rejected.message == (
            "This file is not a picture we can read; we accept JPEG, PNG and WebP."
        )

    def test_it_answers_every_bit_flipped_jpeg_with_a_picture_or_a_refusal(self):
        outcomes = []
        for damaged in corpus.bit_flipped(corpus.jpeg(160, 120), 50, seed=7):
            try:
                outcomes.append(decoding.decode(damaged))
            except Rejected as rejected:
                outcomes.append(rejected)
        refused = [outcome.code for outcome in outcomes if isinstance(outcome, Rejected)]
        accepted = [outcome for outcome in outcomes if isinstance(outcome, Decoded)]
        assert refused and accepted  # the damage did something, and not always the same
        assert "decoder_crashed" not in refused
        assert all(opened(decoded.master).size == (160, 120) for decoded in accepted)

    def test_it_refuses_every_bit_flipped_png_that_pillow_cannot_load(self):
        plain = corpus.encode(corpus.scene(64, 48), "PNG")
        unloadable = 0
        for damaged in corpus.bit_flipped(plain, 50, seed=3):
            try:
                Image.open(io.BytesIO(damaged)).load()
            except Exception:  # whatever Pillow says, it could not decode the file
                unloadable += 1
                assert refusal(damaged).code in ("corrupt", "truncated", "not_an_image")
        assert unloadable > 10  # the damage reached the pixel data often enough

    def test_it_refuses_an_animated_webp(self):
        rejected = refusal(corpus.animated_webp())
        assert rejected.code == "animated"
        assert rejected.message == (
            "Animated pictures are not accepted; please upload a still photo."
        )

    def test_it_refuses_an_animated_png(self):
        assert refusal(corpus.apng()).code == "animated"

    def test_it_refuses_a_multi_picture_jpeg(self):
        assert refusal(corpus.mpo()).code == "animated"

    def test_it_refuses_an_animated_gif_as_a_gif(self):
        rejected = refusal(corpus.animated_gif())
        assert rejected.code == "unsupported_format"
        assert "GIF" in rejected.message


def with_comment(data: bytes, comment: bytes) -> bytes:
    """A JPEG with a COM segment right after its SOI marker."""
    return data[:2] + corpus.jpeg_segment(0xFE, comment) + data[2:]


class TestScans:
    """Each scan of a progressive JPEG is a pass over the whole picture: their number is capped."""

    def test_it_refuses_a_jpeg_of_10000_scans_without_starting_a_decoder(self):
        decoding.shutdown()
        data = corpus.many_scans_jpeg(8000, 6000, scans=10_000)  # 824 KB, 48 megapixels
        rejected = refusal(data)
        assert (rejected.code, rejected.status) == ("too_many_scans", 422)
        assert rejected.message.startswith("This JPEG has more than 64 scans (progressive passes)")
        assert decoding.worker_pids() == []  # refused in this process: no decoder ever saw it

    def test_it_decodes_a_jpeg_of_64_scans_and_refuses_one_of_65(self):
        decoded = decoding.decode(corpus.many_scans_jpeg(640, 480, scans=64))
        assert (decoded.master.width, decoded.master.height) == (640, 480)
        assert refusal(corpus.many_scans_jpeg(640, 480, scans=65)).code == "too_many_scans"

    def test_it_takes_the_limit_from_the_settings(self, settings):
        data = corpus.jpeg(64, 48, progressive=True)  # libjpeg's script: 10 scans for colour
        settings.IMAGE_MAX_JPEG_SCANS = 9
        assert refusal(data).message.startswith("This JPEG has more than 9 scans")
        settings.IMAGE_MAX_JPEG_SCANS = 10
        assert isinstance(decoding.decode(data), Decoded)

    def test_scan_markers_inside_a_comment_are_not_scans(self):
        data = with_comment(corpus.jpeg(64, 48), b"\xff\xda" * 100)
        assert not jpeg.too_many_scans(data, 64)
        assert isinstance(decoding.decode(data), Decoded)

    def test_restart_markers_inside_a_scan_are_not_segments(self):
        # 10,700 restart markers, more segments than the walk would ever look at.
        data = corpus.encode(corpus.scene(1700, 1600), "JPEG", restart_marker_blocks=1)
        data = with_comment(data, b"\xff\xda" * 100)  # so that the scans are walked
        assert data.count(b"\xff\xd0") > jpeg.MAX_SEGMENTS // 8
        assert not jpeg.too_many_scans(data, 64)

    def test_scans_after_garbage_count_as_libjpeg_decodes_them(self):
        scan = corpus.many_scans_jpeg(64, 64, scans=3)
        data = scan.replace(b"\xff\xda", b"junk\xff\xda")
        Image.open(io.BytesIO(data)).load()  # libjpeg skips the junk and reads all scans
        assert jpeg.too_many_scans(data, 2) and not jpeg.too_many_scans(data, 3)

    def test_scans_after_the_end_of_the_picture_are_not_counted(self):
        data = corpus.jpeg(64, 48) + corpus.many_scans_jpeg(64, 64, scans=100)
        assert not jpeg.too_many_scans(data, 64)

    def test_a_file_of_endless_segments_is_refused_without_walking_it_all(self):
        data = b"\xff\xd8" + corpus.jpeg_segment(0xFE, b"\xff\xda") * 3_000_000  # 18 MB
        assert jpeg.too_many_scans(data, 64)


class TestPolyglots:
    def test_it_accepts_a_png_carrying_html_and_keeps_none_of_it(self):
        data = corpus.png_with_html()
        assert data.count(b"<script") == 2
        decoded = decoding.decode(data)
        for rendition in renditions(decoded):
            assert b"<script" not in rendition.data
            assert b"<html" not in rendition.data


class TestOddities:
    def test_it_turns_a_cmyk_jpeg_into_an_rgb_jpeg(self):
        decoded = decoding.decode(corpus.cmyk_jpeg())
        assert (decoded.format, decoded.source_format) == ("jpeg", "JPEG")
        assert opened(decoded.master).mode == "RGB"

    def test_it_scales_a_16_bit_grey_png_down_to_8_bits(self):
        decoded = decoding.decode(corpus.png_grey16())
        master = opened(decoded.master)
        assert master.mode == "L"
        # 16-bit values x * 1024 become x * 4, not clipped to white.
        assert abs(master.getpixel((32, 4)) - 128) <= 4
        assert abs(master.getpixel((8, 4)) - 32) <= 4

    def test_it_reads_a_16_bit_rgb_png(self):
        decoded = decoding.decode(corpus.png_rgb16())
        assert (decoded.format, decoded.master.width, decoded.master.height) == ("jpeg", 32, 16)

    def test_it_keeps_the_transparency_of_a_palette_png(self):
        decoded = decoding.decode(corpus.palette_png_with_transparency())
        assert decoded.format == "png"
        master = opened(decoded.master)
        assert master.format == "PNG"
        assert master.mode == "RGBA"
        assert master.getpixel((5, 5))[3] == 0
        assert master.getpixel((30, 5)) == (255, 0, 0, 255)

    def test_it_stores_an_opaque_png_as_a_jpeg(self):
        data = corpus.encode(corpus.scene(64, 48).convert("RGBA"), "PNG")
        assert decoding.decode(data).format == "jpeg"

    def test_it_keeps_a_grey_jpeg_grey(self):
        decoded = decoding.decode(corpus.grey_jpeg())
        assert decoded.format == "jpeg"
        assert opened(decoded.master).mode == "L"

    def test_it_converts_an_embedded_colour_profile_to_srgb(self):
        red = Image.new("RGB", (16, 16), (255, 0, 0))
        data = corpus.encode(red, "PNG", icc_profile=corpus.swapped_primaries_profile())
        r, g, b = opened(decoding.decode(data).master).getpixel((8, 8))
        assert b > 200 and r < 60  # the profile said this "red" is sRGB's blue

    def test_it_keeps_a_picture_whose_colour_profile_is_garbage(self):
        data = corpus.encode(corpus.scene(32, 32), "PNG", icc_profile=b"not a profile")
        assert decoding.decode(data).format == "jpeg"


PRIVATE_INPUTS = {
    "sideways_jpeg": corpus.phone_jpeg,
    "upright_jpeg": corpus.upright_jpeg_with_metadata,
    "transparent_png": corpus.transparent_png_with_metadata,
}


@pytest.fixture(scope="module", params=sorted(PRIVATE_INPUTS))
def private(request) -> tuple[bytes, Decoded]:
    data = PRIVATE_INPUTS[request.param]()
    # The input really carries what must not come out.
    original = Image.open(io.BytesIO(data))
    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    return data, decoding.decode(data)


class TestMetadata:
    def test_it_turns_a_sideways_photo_upright(self):
        master = opened(decoding.decode(corpus.phone_jpeg()).master)
        assert master.size == (32, 64)
        red_top, blue_bottom = master.getpixel((16, 8)), master.getpixel((16, 56))
        assert red_top[0] > 200 and red_top[2] < 60
        assert blue_bottom[2] > 200 and blue_bottom[0] < 60

    def test_it_keeps_no_metadata_in_any_rendition(self, private):
        _data, decoded = private
        for rendition in renditions(decoded):
            image = opened(rendition)
            assert not image.getexif()
            assert set(image.info) <= {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi"}

    def test_it_keeps_none_of_the_metadata_bytes(self, private):
        data, decoded = private
        assert b"PhoneMaker" in data and corpus.SECRET_COMMENT in data
        for rendition in renditions(decoded):
            for secret in (b"Exif", b"GPS", b"PhoneMaker", corpus.SECRET_COMMENT, b"secret-xmp"):
                assert secret not in rendition.data


class TestHashes:
    def test_a_resized_recompressed_copy_is_a_near_duplicate(self):
        original = corpus.scene(seed=3)
        copy = corpus.encode(original.resize((320, 240)), "JPEG", quality=60)
        distance = decoding.phash_distance(
            decoding.decode(corpus.encode(original, "JPEG")).phash, decoding.decode(copy).phash
        )
        assert distance <= 4

    def test_an_unrelated_picture_is_far_from_it(self):
        first = decoding.decode(corpus.jpeg(seed=3)).phash
        other = decoding.decode(corpus.jpeg(seed=4)).phash
        assert decoding.phash_distance(first, other) > 16

    def test_the_phash_fits_a_signed_bigint_and_splits_into_bands(self):
        hashes = [decoding.decode(corpus.jpeg(64, 48, seed)).phash for seed in range(1, 7)]
        assert any(h < 0 for h in hashes) and any(h > 0 for h in hashes)
        for h in hashes:
            assert -(2**63) <= h < 2**63
            bands = decoding.phash_bands(h)
            assert all(0 <= band <= 0xFFFF for band in bands)
            assert sum(band << (16 * i) for i, band in enumerate(bands)) == h % 2**64

    def test_phash_helpers_treat_the_sign_bit_as_an_ordinary_bit(self):
        assert decoding.phash_distance(0, -1) == 64
        assert decoding.phash_distance(-(2**63), 0) == 1
        assert decoding.phash_bands(-1) == (0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF)
        assert decoding.phash_bands(0x0004_0003_0002_0001) == (1, 2, 3, 4)

    def test_the_same_pixels_as_png_and_lossless_webp_hash_the_same(self):
        picture = corpus.noise(50, 40)
        as_png = decoding.decode(corpus.encode(picture, "PNG"))
        as_webp = decoding.decode(corpus.encode(picture, "WEBP", lossless=True))
        assert (as_png.source_format, as_webp.source_format) == ("PNG", "WEBP")
        assert as_png.pixels_sha256 == as_webp.pixels_sha256

    def test_one_changed_pixel_changes_the_pixels_hash(self):
        picture = corpus.noise(50, 40)
        changed = picture.copy()
        changed.putpixel((0, 0), tuple(255 - v for v in picture.getpixel((0, 0))))
        first = decoding.decode(corpus.encode(picture, "PNG")).pixels_sha256
        assert decoding.decode(corpus.encode(changed, "PNG")).pixels_sha256 != first

    def test_a_huge_jpeg_decodes_at_reduced_scale_the_same_way_every_time(self):
        data = corpus.jpeg(9000, 1000)
        first, second = decoding.decode(data), decoding.decode(data)
        assert (first.master.width, first.master.height) == (4096, 455)
        assert first.pixels_sha256 == second.pixels_sha256
        assert first.master.data == second.master.data


class TestRenditions:
    def test_it_never_upscales_a_small_picture(self):
        decoded = decoding.decode(corpus.jpeg(100, 60))
        assert {(r.width, r.height) for r in renditions(decoded)} == {(100, 60)}

    def test_it_fits_display_and_thumbnail_to_their_long_side(self):
        decoded = decoding.decode(corpus.jpeg(2000, 1000))
        sizes = [(r.width, r.height) for r in renditions(decoded)]
        assert sizes == [(2000, 1000), (1024, 512), (256, 128)]

    def test_it_reports_the_real_size_and_format_of_each_rendition(self):
        decoded = decoding.decode(corpus.jpeg(1500, 700))
        for rendition in renditions(decoded):
            image = opened(rendition)
            assert image.size == (rendition.width, rendition.height)
            assert image.format == "JPEG"

    def test_it_caps_the_master_at_the_configured_side(self, settings):
        settings.IMAGE_MASTER_MAX_SIDE = 300
        decoded = decoding.decode(corpus.jpeg(1000, 500))
        assert (decoded.master.width, decoded.master.height) == (300, 150)
        assert (decoded.thumb.width, decoded.thumb.height) == (256, 128)


# --- Isolation ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_png() -> bytes:
    """49 megapixels (under the cap) that take the worker a few seconds; the file is small."""
    return corpus.encode(Image.new("RGB", (7000, 7000), (20, 120, 60)), "PNG", compress_level=1)


def resident_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def decode_in_thread(data: bytes) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def upload():
        try:
            outcome["result"] = decoding.decode(data)
        except BaseException as error:  # the test inspects whatever came out
            outcome["result"] = error

    thread = threading.Thread(target=upload)
    thread.start()
    return thread, outcome


def wait_until_decoding(pid: int, thread: threading.Thread) -> None:
    """Return once the worker holds a decoded 147 MB picture, i.e. is mid-way."""
    deadline = time.monotonic() + 30
    while resident_bytes(pid) < 120 * 1024 * 1024:
        assert thread.is_alive(), "the worker finished before it could be killed"
        assert time.monotonic() < deadline, "the worker never started decoding"
        time.sleep(0.005)


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class TestIsolation:
    @pytest.fixture(autouse=True)
    def fresh_worker(self):
        decoding.shutdown()
        yield
        decoding.shutdown()  # the next test starts a worker with normal settings

    def test_warm_up_starts_the_worker_before_the_first_upload(self):
        assert decoding.worker_pids() == []
        decoding.warm_up()
        [pid] = decoding.worker_pids()
        assert pid != os.getpid() and is_running(pid)

    def test_the_worker_runs_at_a_lower_cpu_priority_than_the_web_process(self):
        decoding.warm_up()
        [pid] = decoding.worker_pids()
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(ours + worker.NICENESS, 19)

    def test_the_worker_answers_exactly_what_process_computes(self):
        data = corpus.png_with_html()
        assert decoding.decode(data) == imaging.process(data)

    def test_a_killed_worker_costs_one_upload_and_the_next_one_works(self, big_png):
        decoding.warm_up()
        [pid] = decoding.worker_pids()
        thread, outcome = decode_in_thread(big_png)
        wait_until_decoding(pid, thread)
        os.kill(pid, signal.SIGKILL)
        thread.join(timeout=30)
        assert isinstance(outcome["result"], Rejected)
        assert (outcome["result"].code, outcome["result"].status) == ("decoder_crashed", 422)
        assert isinstance(decoding.decode(corpus.jpeg()), Decoded)
        assert decoding.worker_pids() not in ([], [pid])

    def test_a_worker_past_the_timeout_is_killed_and_replaced(self, big_png, settings):
        decoding.warm_up()
        [pid] = decoding.worker_pids()
        settings.IMAGE_WORKER_TIMEOUT = 0.2
        assert refusal(big_png).code == "timeout"
        assert not is_running(pid)
        settings.IMAGE_WORKER_TIMEOUT = 30
        assert isinstance(decoding.decode(corpus.jpeg()), Decoded)

    def test_bytes_that_timed_out_are_refused_again_without_decoding(self, big_png, settings):
        settings.IMAGE_WORKER_TIMEOUT = 0.2
        assert refusal(big_png).code == "timeout"
        settings.IMAGE_WORKER_TIMEOUT = 30
        decoding.shutdown()
        rejected = refusal(big_png)
        assert (rejected.code, rejected.status) == ("timeout", 422)
        assert decoding.worker_pids() == []  # no worker was asked
        assert isinstance(decoding.decode(corpus.jpeg()), Decoded)  # other bytes are decoded

    def test_bytes_that_timed_out_are_decoded_again_when_memory_is_off(self, big_png, settings):
        settings.IMAGE_TIMEOUT_MEMORY_HOURS = 0
        settings.IMAGE_WORKER_TIMEOUT = 0.2
        assert refusal(big_png).code == "timeout"
        settings.IMAGE_WORKER_TIMEOUT = 30
        assert isinstance(decoding.decode(big_png), Decoded)

    def test_a_worker_past_its_cpu_limit_is_stopped_and_replaced(self, big_png, settings):
        settings.IMAGE_WORKER_CPU_SECONDS = 1
        assert refusal(big_png).code == "timeout"
        assert isinstance(decoding.decode(corpus.jpeg()), Decoded)

    def test_a_worker_out_of_memory_refuses_the_picture_and_recovers(self, big_png, settings):
        settings.IMAGE_WORKER_MEMORY_MB = 150  # the decoded picture alone needs 147 MB
        assert refusal(big_png).code == "too_big_to_decode"
        assert isinstance(decoding.decode(corpus.jpeg()), Decoded)

    def test_a_worker_is_replaced_after_its_last_task(self, settings):
        settings.IMAGE_WORKER_MAX_TASKS = 2
        decoding.decode(corpus.jpeg(32, 32))
        [pid] = decoding.worker_pids()
        decoding.decode(corpus.jpeg(32, 32))
        assert decoding.worker_pids() == []
        decoding.decode(corpus.jpeg(32, 32))
        assert decoding.worker_pids() not in ([], [pid])

    def test_threads_share_the_worker_safely(self):
        uploads = [corpus.jpeg(200, 150, seed) for seed in range(6)]
        threads = [decode_in_thread(data) for data in uploads]
        for thread, _outcome in threads:
            thread.join(timeout=30)
        hashes = [outcome["result"].pixels_sha256 for _thread, outcome in threads]
        assert hashes == [imaging.process(data).pixels_sha256 for data in uploads]

    def test_a_malformed_reply_from_the_worker_is_not_trusted(self):
        for reply in (b"", b"junk", b"\x00\x00\x00\x02{}", worker.pack({"renditions": []})):
            with pytest.raises(ValueError):
                worker.unpack(reply)


def variants(data: bytes, count: int) -> list[bytes]:
    """``count`` files of the same picture with different bytes (junk after its end)."""
    return [data + b"\x00" * number for number in range(1, count + 1)]


def wait_for(condition, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


class TestSharing:
    """One request cannot hold the worker for long, nor keep others waiting behind all its files."""

    @pytest.fixture(autouse=True)
    def fresh_worker(self):
        decoding.shutdown()
        yield
        decoding.shutdown()

    def test_the_files_of_one_request_share_its_decoding_time(self, big_png, settings, asks):
        settings.IMAGE_REQUEST_DECODE_SECONDS = 0.5  # the big PNG alone takes seconds
        with decoding.shared_budget():
            refusals = [refusal(data) for data in variants(big_png, 3)]
        assert [(r.code, r.status) for r in refusals] == [("deferred", 503)] * 3
        assert refusals[0].message.startswith("This upload has used up its time with our")
        assert len(asks) == 1  # the first was stopped at 0.5 s; the others never reached a worker

    def test_outside_a_request_each_upload_has_the_time_to_itself(self, big_png, settings, asks):
        settings.IMAGE_REQUEST_DECODE_SECONDS = 0.5
        refusals = [refusal(data) for data in variants(big_png, 2)]
        assert [r.code for r in refusals] == ["deferred", "deferred"]
        assert len(asks) == 2

    def test_a_file_stopped_by_its_request_budget_is_not_remembered(self, big_png, settings):
        settings.IMAGE_REQUEST_DECODE_SECONDS = 0.5
        assert refusal(big_png).code == "deferred"
        assert cache.get(decoding._too_slow_key(big_png)) is None

    def test_an_upload_goes_before_the_next_file_of_a_request_holding_the_worker(self, big_png):
        decoding.warm_up()
        [pid] = decoding.worker_pids()
        finished: list[str] = []

        def busy_request():
            with decoding.shared_budget():
                for number, data in enumerate(variants(big_png, 2)):
                    decoding.decode(data)
                    finished.append(f"slow {number}")

        def honest_upload():
            finished.append("honest" if decoding.decode(corpus.jpeg()) else "?")

        busy = threading.Thread(target=busy_request)
        busy.start()
        wait_until_decoding(pid, busy)
        honest = threading.Thread(target=honest_upload)
        honest.start()
        wait_for(lambda: decoding._pool._turns.waiting() == 1, "the honest upload waits")
        assert finished == []  # it queued while the first slow file was still decoding
        honest.join(timeout=60)
        busy.join(timeout=60)
        assert finished == ["slow 0", "honest", "slow 1"]


def memory_of(pid: int) -> Iterator[bytes]:
    """Every readable region of a process's memory (ours to read: it is our child)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            addresses, permissions = line.split()[:2]
            if not permissions.startswith("r"):
                continue
            start, end = (int(address, 16) for address in addresses.split("-"))
            try:
                mem.seek(start)
                yield mem.read(end - start)
            except (OSError, OverflowError, ValueError):
                continue  # [vvar] and the like cannot be read


class TestSecrets:
    """The worker parses hostile bytes: nothing it holds may help whoever takes it over."""

    @pytest.fixture(autouse=True)
    def fresh_worker(self):
        decoding.shutdown()
        yield
        decoding.shutdown()

    @pytest.fixture
    def secrets(self, monkeypatch, settings) -> list[bytes]:
        """The web process's secrets, in its environment as in production."""
        values = {
            "SECRET_KEY": settings.SECRET_KEY,
            "DATABASE_URL": "postgres://imagemonkey:a-database-password@db/imagemonkey",
            "REDIS_URL": "redis://:a-redis-password@redis:6379/0",
        }
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        return [value.encode() for value in values.values()]

    def test_the_worker_starts_with_an_empty_environment(self, secrets):
        decoding.warm_up()
        [pid] = decoding.worker_pids()
        assert Path(f"/proc/{pid}/environ").read_bytes() == b""

    def test_no_secret_of_the_web_process_is_anywhere_in_the_worker_memory(self, secrets):
        decoding.warm_up()
        assert isinstance(decoding.decode(corpus.phone_jpeg()), Decoded)  # it has worked
        [pid] = decoding.worker_pids()
        regions = list(memory_of(pid))
        assert any(b"from donations.worker import main" in region for region in regions)
        assert [secret for secret in secrets if any(secret in r for r in regions)] == []

    def test_the_worker_holds_no_file_but_its_pipe_and_standard_streams(self):
        decoding.warm_up()
        [pid] = decoding.worker_pids()
        assert len(os.listdir(f"/proc/{pid}/fd")) == 4


def outcome(decode, data: bytes) -> Decoded | str:
    try:
        return decode(data)
    except Rejected as rejected:
        return rejected.code


def every_kind_of_file() -> list[bytes]:
    """What the pipeline treats differently, whole and with bits flipped."""
    scene = corpus.scene(96, 64)
    kinds = [
        corpus.jpeg(160, 120),
        corpus.jpeg(160, 120, progressive=True),
        corpus.phone_jpeg(),
        corpus.cmyk_jpeg(),
        corpus.grey_jpeg(),
        corpus.mpo(),
        corpus.encode(scene, "PNG"),
        corpus.png_rgb16(),
        corpus.png_grey16(),
        corpus.palette_png_with_transparency(),
        corpus.transparent_png_with_metadata(),
        corpus.png_with_html(),
        corpus.apng(),
        png_with_a_broken_pixel_stream(),
        corpus.encode(scene, "WEBP"),
        corpus.encode(scene.convert("RGBA"), "WEBP", lossless=True),
        corpus.animated_webp(),
    ]
    return kinds + [damaged for data in kinds for damaged in corpus.bit_flipped(data, 20, seed=5)]


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {name: value.strip() for name, value in (line.split(":", 1) for line in lines)}


class TestSandbox:
    """Whoever takes the worker over can reach no file, no network, no other process."""

    @pytest.fixture(autouse=True)
    def fresh_worker(self):
        decoding.shutdown()
        yield
        decoding.shutdown()

    @pytest.fixture
    def without_libseccomp(self, tmp_path, monkeypatch):
        """Workers start where ``import pyseccomp`` fails as it does without libseccomp.so.2."""
        (tmp_path / "donations").symlink_to(Path(worker.__file__).parent)
        (tmp_path / "pyseccomp.py").write_text('raise RuntimeError("Unable to find libseccomp")\n')
        monkeypatch.setattr(worker, "CODE_ROOT", str(tmp_path))

    def test_the_worker_serves_with_no_new_privileges_and_a_seccomp_filter(self):
        decoding.warm_up()
        [pid] = decoding.worker_pids()
        status = proc_status(pid)
        assert (status["NoNewPrivs"], status["Seccomp"]) == ("1", "2")  # 2: a filter

    @pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's, about the damaged files
    def test_the_sandboxed_worker_answers_what_process_computes_for_every_kind_of_file(self):
        decoding.warm_up()
        [pid] = decoding.worker_pids()
        files = every_kind_of_file()  # 17 kinds, 20 damaged copies of each
        answers = [
            (outcome(decoding.decode, data), outcome(imaging.process, data)) for data in files
        ]
        assert [n for n, (sandboxed, free) in enumerate(answers) if sandboxed != free] == []
        assert decoding.worker_pids() == [pid]  # the filter killed nothing
        refused = {sandboxed for sandboxed, _ in answers if isinstance(sandboxed, str)}
        assert refused and "decoder_crashed" not in refused

    def test_a_sandboxed_worker_has_no_environment_and_no_django_settings(self):
        state = {"environ": {}, "settings_loaded": False, "django_configured": False}
        assert decoding._probe("state") == {"done": state}

    @pytest.mark.parametrize(
        "attempt",
        ["socket", "read_file", "write_file", "exec", "fork", "signal_another_process"],
    )
    def test_the_sandbox_kills_a_worker_that_tries(self, attempt):
        assert decoding._probe(attempt) == {"exit": -signal.SIGSYS}

    def test_without_libseccomp_the_decoder_refuses_to_start(self, without_libseccomp, caplog):
        rejected = refusal(corpus.jpeg())
        assert (rejected.code, rejected.status) == ("unavailable", 503)
        assert "libseccomp cannot be loaded: Unable to find libseccomp" in caplog.text
        assert decoding.worker_pids() == []

    @pytest.mark.django_db
    def test_without_libseccomp_an_upload_answers_503(self, without_libseccomp, client):
        photo = SimpleUploadedFile("photo.jpg", corpus.jpeg())
        response = client.post("/v1/donate", {"image": photo})
        assert response.status_code == 503
        assert response.json()["error"].startswith("We cannot process pictures right now")

    def test_a_setting_lets_the_decoder_run_without_seccomp(
        self, without_libseccomp, settings, caplog
    ):
        settings.IMAGE_WORKER_REQUIRE_SECCOMP = False
        assert isinstance(decoding.decode(corpus.jpeg()), Decoded)
        assert "runs WITHOUT its seccomp filter" in caplog.text
        [pid] = decoding.worker_pids()
        assert (proc_status(pid)["NoNewPrivs"], proc_status(pid)["Seccomp"]) == ("1", "0")


class TestTurns:
    def test_waiters_take_the_lock_in_the_order_they_asked(self):
        turns, order = decoding._Turns(), []
        turns.acquire()

        def wait_then_note(name):
            with turns:
                order.append(name)

        threads = []
        for waiting, name in enumerate("abc", start=1):
            threads.append(threading.Thread(target=wait_then_note, args=(name,)))
            threads[-1].start()
            wait_for(lambda n=waiting: turns.waiting() == n, f"{name} waits")
        turns.release()
        for thread in threads:
            thread.join(timeout=10)
        assert order == ["a", "b", "c"]
        assert turns.acquire(timeout=0)  # free again

    def test_a_waiter_that_gives_up_leaves_the_queue(self):
        turns = decoding._Turns()
        turns.acquire()
        assert not turns.acquire(timeout=0.01)
        assert turns.waiting() == 0
        turns.release()
        assert turns.acquire(timeout=0)
