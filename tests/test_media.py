"""Images and audio in one argument: every input kind, the errors, downloads, and no key leaks."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from openai_compat import Client, _media

from .command import run_command
from .server import LoopbackServer, completion

# The first bytes of each format (enough for sniffing; the servers here never decode them).
SAMPLES = {
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 20,
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20,
    "image/gif": b"GIF89a\x01\x00\x01\x00" + b"\x00" * 20,
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 20,
    "audio/wav": b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 20,
    "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 20,
    "audio/flac": b"fLaC\x00\x00\x00\x22" + b"\x00" * 20,
    "audio/ogg": b"OggS\x00\x02" + b"\x00" * 20,
}
FORMATS = {"audio/wav": "wav", "audio/mpeg": "mp3"}


def data_url(mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(SAMPLES[mime]).decode()}"


def sent_parts(server: LoopbackServer, request: int = -1) -> list[dict[str, Any]]:
    return server.requests[request].json["messages"][-1]["content"]


@pytest.fixture
def answering(server: LoopbackServer) -> LoopbackServer:
    server.handler = lambda req, wire: wire.json(completion("a cat"))
    return server


class SavesLikePIL:
    """What chat() needs of a PIL image: save(buffer, format=...)."""

    def save(self, buffer: io.BytesIO, format: str) -> None:
        assert format == "PNG"
        buffer.write(SAMPLES["image/png"])


@pytest.mark.parametrize("mime", [m for m in SAMPLES if m.startswith("image/")])
def test_every_image_kind_becomes_an_image_url_part(client: Client, answering: LoopbackServer, tmp_path: Path,
                                                    mime: str) -> None:
    path = tmp_path / "picture.bin"
    path.write_bytes(SAMPLES[mime])
    items = [str(path), path, SAMPLES[mime], "https://example.com/cat.png", data_url(mime), SavesLikePIL(),
             "http://192.168.1.5/cam.jpg"]
    assert client.chat("What is in these?", images=items) == "a cat"
    parts = sent_parts(answering)
    assert parts[0] == {"type": "text", "text": "What is in these?"}
    urls = [p["image_url"]["url"] for p in parts[1:]]
    assert urls == [data_url(mime), data_url(mime), data_url(mime), "https://example.com/cat.png", data_url(mime),
                    data_url("image/png"), "http://192.168.1.5/cam.jpg"]
    assert all(p["type"] == "image_url" for p in parts[1:])


@pytest.mark.parametrize("mime", list(FORMATS))
def test_every_audio_kind_becomes_an_input_audio_part(client: Client, answering: LoopbackServer, tmp_path: Path,
                                                      mime: str) -> None:
    path = tmp_path / "clip"
    path.write_bytes(SAMPLES[mime])
    client.chat("Transcribe", audio=[path, SAMPLES[mime], data_url(mime)])
    expected = {"type": "input_audio", "input_audio": {"data": base64.b64encode(SAMPLES[mime]).decode(),
                                                       "format": FORMATS[mime]}}
    assert sent_parts(answering)[1:] == [expected] * 3


def test_the_file_name_tells_the_type_when_the_bytes_do_not(client: Client, answering: LoopbackServer,
                                                            tmp_path: Path) -> None:
    path = tmp_path / "scan.jpg"
    path.write_bytes(b"not a real jpeg header")
    client.chat("x", images=[path], detail="low")
    assert sent_parts(answering)[1]["image_url"] == {"url": "data:image/jpeg;base64," + base64.b64encode(
        b"not a real jpeg header").decode(), "detail": "low"}


RAW_PART = ('send it anyway as a content part of your own: {"type": "input_audio", "input_audio": {"data": <base64>,'
            ' "format": "%s"}}')


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"images": [b"\x00\x01 no known header"]}, ValueError,
     "image '18 bytes' is not PNG, JPEG, GIF or WebP (its type is unknown)"),
    ({"images": [SAMPLES["audio/wav"]]}, ValueError, "image '36 bytes' is not PNG, JPEG, GIF or WebP (its type is"
                                                      " audio/wav)"),
    ({"images": [b"RIFF\x24\x00\x00\x00AVI LIST" + b"\x00" * 8]}, ValueError,
     "image '24 bytes' is not PNG, JPEG, GIF or WebP (its type is unknown)"),
    ({"images": ["/no/such/cat.png"]}, ValueError, "cannot read image '/no/such/cat.png': No such file or directory"),
    ({"audio": ["/no/such/purr.wav"]}, ValueError, "cannot read audio '/no/such/purr.wav': No such file or directory"),
    ({"images": [b""]}, ValueError, "image '0 bytes' is empty"),
    ({"audio": [SAMPLES["image/png"]]}, ValueError, "audio '36 bytes' is not WAV or MP3 (its type is image/png);"
                                                     " convert it, or " + RAW_PART % "png"),
    ({"audio": [b"\x00\x00 who knows"]}, ValueError, "audio '12 bytes' is not WAV or MP3 (its type is unknown)"),
    ({"audio": [SAMPLES["audio/flac"]]}, ValueError, "audio '28 bytes' is not WAV or MP3 (its type is audio/flac);"
                                                      " convert it, or " + RAW_PART % "flac"),
    ({"audio": [data_url("audio/ogg")]}, ValueError,
     "audio data URL of type 'audio/ogg': the API takes wav or mp3 audio; convert it, or " + RAW_PART % "ogg"),
    ({"audio": ["https://example.com/a.mp3"]}, ValueError,
     "audio 'https://example.com/a.mp3' is a URL: pass inline_urls=True to send it inline"),
    ({"images": "cat.png"}, TypeError, "images must be a list of items, got str"),
    ({"audio": b"RIFF"}, TypeError, "audio must be a list of items, got bytes"),
    ({"images": [42]}, TypeError, "image must be a path, bytes, a URL or an image with save(), got int"),
    ({"audio": [4.2]}, TypeError, "audio must be a path, bytes, a URL or an image with save(), got float"),
])
def test_bad_media_is_refused_before_anything_is_sent(client: Client, answering: LoopbackServer, kwargs: dict,
                                                      error: type, message: str) -> None:
    with pytest.raises(error) as info:
        client.chat("x", **kwargs)
    assert str(info.value) == message
    assert answering.requests == []


class SavesSomethingElse:
    """An object with save() whose first bytes are no known header."""

    def save(self, buffer: io.BytesIO, format: str) -> None:
        buffer.write(b"\x00 not an image")


def test_a_file_of_the_wrong_kind_is_named_and_an_image_object_is_taken_for_png(
    client: Client, answering: LoopbackServer, tmp_path: Path
) -> None:
    clip = tmp_path / "purr.flac"
    clip.write_bytes(SAMPLES["audio/flac"])
    with pytest.raises(ValueError) as info:
        client.chat("x", audio=[clip])
    assert str(info.value) == (f"audio {str(clip)!r} is not WAV or MP3 (its type is audio/flac); convert it, or "
                               + RAW_PART % "flac")
    client.chat("x", images=[SavesSomethingElse()])  # saved as PNG, whatever its first bytes say
    assert sent_parts(answering)[1]["image_url"]["url"].startswith("data:image/png;base64,")
    with pytest.raises(ValueError) as alone:
        client.chat([{"role": "system", "content": "Describe."}], images=[SAMPLES["image/png"]])
    assert str(alone.value) == "images and audio go with a user message, and there is none"


@pytest.mark.parametrize("sync", [b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"], ids=["mpeg1", "mpeg2", "mpeg2.5"])
def test_each_mp3_frame_sync_is_known(client: Client, answering: LoopbackServer, sync: bytes) -> None:
    frame = sync + b"\x90\x64" + b"\x00" * 40
    client.chat("x", audio=[frame])
    assert sent_parts(answering)[1]["input_audio"]["format"] == "mp3"


def test_a_wav_known_only_by_its_name_and_a_data_url_with_inline_urls(client: Client, answering: LoopbackServer,
                                                                       tmp_path: Path) -> None:
    clip = tmp_path / "purr.wav"
    clip.write_bytes(b"headerless pcm")
    client.chat("x", audio=[clip], images=[data_url("image/gif")], inline_urls=True)
    picture, sound = sent_parts(answering)[1:]
    assert picture == {"type": "image_url", "image_url": {"url": data_url("image/gif")}}
    assert sound["input_audio"]["format"] == "wav"


def test_images_go_to_an_empty_user_message_without_an_empty_text_part(client: Client,
                                                                       answering: LoopbackServer) -> None:
    client.chat([{"role": "user", "content": "", "name": "ann"}], images=[SAMPLES["image/gif"]])
    assert answering.requests[0].json["messages"] == [{"role": "user", "name": "ann", "content": [
        {"type": "image_url", "image_url": {"url": data_url("image/gif")}}]}]


def test_parts_join_the_last_user_message_and_the_callers_list_is_left_alone(
    client: Client, answering: LoopbackServer
) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [{"type": "text", "text": "and this?"}]}]
    before = repr(messages)
    client.chat(messages, images=[SAMPLES["image/gif"]])
    sent = answering.requests[0].json["messages"]
    assert sent[0] == {"role": "user", "content": "first"}
    assert sent[2]["content"] == [{"type": "text", "text": "and this?"},
                                  {"type": "image_url", "image_url": {"url": data_url("image/gif")}}]
    assert repr(messages) == before


def test_chat_message_chat_json_and_batch_take_images_too(client: Client, answering: LoopbackServer) -> None:
    client.chat_message("x", images=[SAMPLES["image/png"]])
    answering.handler = lambda req, wire: wire.json(completion('{"animal": "cat"}'))
    assert client.chat_json("x", images=[SAMPLES["image/png"]]) == {"animal": "cat"}
    client.batch(["a", "b"], images=[SAMPLES["image/png"]])
    assert all(sent_parts(answering, i)[1]["type"] == "image_url" for i in range(4))


# -- downloads: through the client's session, never with its key --------------------------------------------


@pytest.fixture
def image_host() -> Iterator[LoopbackServer]:
    host = LoopbackServer("127.0.0.2")
    host.handler = lambda req, wire: wire.body(SAMPLES["image/jpeg"], headers={"Content-Type": "image/jpeg"})
    yield host
    host.close()


def test_inline_urls_download_without_any_key(answering: LoopbackServer, image_host: LoopbackServer) -> None:
    session = requests.Session()
    session.headers["Authorization"] = "Bearer session-secret"
    client = Client(answering.url, model="m", session=session)
    photo = f"http://{image_host.host}:{image_host.port}/photos/cat.jpg"
    client.chat("x", images=[photo], inline_urls=True)
    keyed = Client(answering.url, model="m", api_key="sk-key-0123456789")
    keyed.chat("x", images=[photo], inline_urls=True)
    assert [r.path for r in image_host.requests] == ["/photos/cat.jpg"] * 2
    assert all("authorization" not in r.headers for r in image_host.requests), "no key ever reaches an image host"
    assert answering.requests[0].headers["authorization"] == "Bearer session-secret"
    assert sent_parts(answering)[1]["image_url"]["url"] == data_url("image/jpeg")


def test_a_download_takes_the_environments_proxy_for_its_own_host(
    answering: LoopbackServer, image_host: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server is reached directly (NO_PROXY); the image host only through the proxy, which
    # image_host stands for (it answers any request with the image).
    monkeypatch.setenv("HTTP_PROXY", f"http://{image_host.host}:{image_host.port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    Client(answering.url, model="m").chat("x", images=["http://images.example.invalid/cat.jpg"], inline_urls=True)
    assert [r.path for r in image_host.requests] == ["http://images.example.invalid/cat.jpg"]
    assert answering.requests[0].path == "/v1/chat/completions"


def test_a_download_skips_the_servers_proxy_where_no_proxy_says(
    answering: LoopbackServer, image_host: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server is reached through a proxy (answering stands for it); the image host directly.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{answering.port}")
    monkeypatch.setenv("NO_PROXY", image_host.host)
    photo = f"http://{image_host.host}:{image_host.port}/cat.jpg"
    Client("http://api.example.invalid/v1", model="m").chat("x", images=[photo], inline_urls=True)
    assert [r.path for r in image_host.requests] == ["/cat.jpg"]
    assert [r.path for r in answering.requests] == ["http://api.example.invalid/v1/chat/completions"]


def test_a_download_over_the_cap_is_refused(answering: LoopbackServer, image_host: LoopbackServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_media, "MAX_DOWNLOAD_BYTES", 16)
    with pytest.raises(ValueError, match="larger than"):
        Client(answering.url, model="m").chat("x", images=[f"http://{image_host.host}:{image_host.port}/big.jpg"],
                                              inline_urls=True)
    assert answering.requests == []


def test_the_cli_sends_images_and_audio(answering: LoopbackServer, tmp_path: Path) -> None:
    image, clip = tmp_path / "cat.png", tmp_path / "purr.wav"
    image.write_bytes(SAMPLES["image/png"])
    clip.write_bytes(SAMPLES["audio/wav"])
    result = run_command("chat", "--base-url", answering.url, "--model", "m", "--no-stream", "--image", str(image),
                         "--image", "https://example.com/b.png", "--audio", str(clip), "What is this?")
    assert result.returncode == 0, result.stderr
    kinds = [p["type"] for p in sent_parts(answering)]
    assert kinds == ["text", "image_url", "image_url", "input_audio"]


def test_an_x_api_key_header_never_reaches_an_image_host(answering: LoopbackServer,
                                                         image_host: LoopbackServer) -> None:
    session = requests.Session()
    session.headers["X-Api-Key"] = "xak-session-0123456789"
    client = Client(answering.url, model="m", session=session)
    client.chat("x", images=[f"http://{image_host.host}:{image_host.port}/cat.jpg"], inline_urls=True)
    assert answering.requests[0].headers["x-api-key"] == "xak-session-0123456789", "sent to its own server"
    assert [r.path for r in image_host.requests] == ["/cat.jpg"]
    assert "x-api-key" not in image_host.requests[0].headers


def test_an_mp3_without_an_id3_tag_is_known_by_its_frame_sync(client: Client, answering: LoopbackServer) -> None:
    frame = b"\xff\xfb\x90\x64" + b"\x00" * 40  # MPEG-1 layer III, no ID3 tag in front
    client.chat("what is this?", audio=[frame])
    assert sent_parts(answering)[1] == {"type": "input_audio", "input_audio": {
        "data": base64.b64encode(frame).decode(), "format": "mp3"}}


def test_a_download_of_exactly_the_cap_is_whole_and_one_byte_more_is_refused(
    answering: LoopbackServer, image_host: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 2 * 1024 * 1024
    monkeypatch.setattr(_media, "MAX_DOWNLOAD_BYTES", cap)
    picture = SAMPLES["image/png"] + bytes(range(256)) * ((cap - len(SAMPLES["image/png"])) // 256)
    picture += b"\x00" * (cap - len(picture))
    image_host.handler = lambda req, wire: wire.body(picture if req.path == "/fits.png" else picture + b"!",
                                                     headers={"Content-Type": "image/png"})
    url = f"http://{image_host.host}:{image_host.port}"
    client = Client(answering.url, model="m")
    client.chat("x", images=[f"{url}/fits.png"], inline_urls=True)
    sent = sent_parts(answering)[1]["image_url"]["url"]
    assert base64.b64decode(sent.split(",", 1)[1]) == picture, "every piece of the download is kept"
    with pytest.raises(ValueError) as info:
        client.chat("x", images=[f"{url}/too-big.png"], inline_urls=True)
    assert str(info.value) == f"{url}/too-big.png is larger than 2 MB"


def test_a_download_that_fails_says_which_url_and_why(answering: LoopbackServer, image_host: LoopbackServer) -> None:
    image_host.handler = lambda req, wire: wire.json({"error": "gone"}, status=404)
    url = f"http://{image_host.host}:{image_host.port}/gone.png"
    with pytest.raises(ValueError) as info:
        Client(answering.url, model="m").chat("x", images=[url], inline_urls=True)
    assert str(info.value).startswith(f"cannot download {url}: 404 Client Error")


def test_a_downloaded_files_type_may_come_from_its_url_path(answering: LoopbackServer,
                                                            image_host: LoopbackServer) -> None:
    image_host.handler = lambda req, wire: wire.body(b"headerless pcm", headers={"Content-Type": "audio/wav"})
    url = f"http://{image_host.host}:{image_host.port}/purr.wav?sig=a?b"
    Client(answering.url, model="m").chat("x", audio=[url], inline_urls=True)
    assert sent_parts(answering)[1]["input_audio"]["format"] == "wav"
