"""A real browser, end to end: headless Chromium loads a small site that core serves.

Debian's chromium is driven through the DevTools protocol over
--remote-debugging-pipe (JSON messages ending in NUL on descriptors 3 and 4),
with the standard library only: no driver, no websocket client.  The pages
check what they can see themselves (computed style, a module that ran, an
image that decoded, audio that played, an upload read back, compressed
transfer sizes) and report into `window.results`; the access log shows what
only the server sees (the 206 of a seek, the 304s of a reload).

If Chromium cannot start, the test fails with the reason: a browser test that
skips itself proves nothing.
"""
import array
import gzip
import json
import math
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import time
import wave
import zlib

import pytest

from brotli_stored import compress_stored
from servers import RunningServer, ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.servers("core")]

CHROMIUM = "chromium"
PAGE_TIMEOUT = 30.0
# 48 kHz, 16-bit stereo: about 8 MiB.  Chromium reads a few MiB ahead of
# what plays; the middle of the file must lie beyond that, or the seek is
# served from what it has and asks for no range.
WAV_SECONDS = 45
WAV_RATE = 48000

INDEX_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>loading</title>
<link rel="stylesheet" href="site.css">
<script type="module" src="app.mjs"></script>
</head><body>
<h1 id="heading">Served by core</h1>
<p>Caf\u00e9 \u2014 UTF-8 text.</p>
<img id="pixel" src="pixel.png" alt="">
<audio id="tone" src="tone.wav" preload="metadata"></audio>
</body></html>
"""

# Big enough that compression shows in the transfer size.
SITE_CSS = "h1#heading { color: rgb(1, 2, 3); }\n" + "".join(
    f".rule-{i} {{ margin: {i}px; padding: {i % 7}px; }}\n" for i in range(400))

HELPER_JS = "export function helper() { return 'helper ran'; }\n" + "// padding\n" * 300

APP_MJS = r"""
import { helper } from './helper.js';

const results = { moduleRan: true, helper: helper() };
window.results = results;

function until(target, event, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out waiting for ' + event)), timeoutMs);
    target.addEventListener(event, () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

async function playAndSeek() {
  const audio = document.getElementById('tone');
  if (audio.readyState < 1) await until(audio, 'loadedmetadata');
  results.duration = audio.duration;
  await audio.play();
  while (audio.currentTime < 0.2) await until(audio, 'timeupdate');
  results.playedFrom = audio.currentTime;
  const middle = audio.duration / 2;
  const seeked = until(audio, 'seeked');
  audio.currentTime = middle;
  await seeked;
  while (audio.currentTime < middle + 0.2) await until(audio, 'timeupdate');
  results.playedAfterSeek = audio.currentTime;
  audio.pause();
}

async function upload() {
  const bytes = new Uint8Array(200000);
  for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  const name = '/files/upload-' + Date.now() + '.bin';
  const first = await fetch(name, { method: 'POST', body: new Blob([bytes]) });
  results.uploadStatus = first.status;
  const back = new Uint8Array(await (await fetch(name, { cache: 'no-store' })).arrayBuffer());
  results.uploadMatches = back.length === bytes.length && back.every((b, i) => b === bytes[i]);
  const second = await fetch(name, { method: 'POST', body: new Blob([bytes]), headers: { 'If-None-Match': '*' } });
  results.secondUploadStatus = second.status;
}

async function main() {
  results.color = getComputedStyle(document.getElementById('heading')).color;
  const pixel = document.getElementById('pixel');
  await pixel.decode();
  results.naturalWidth = pixel.naturalWidth;
  results.reload = performance.getEntriesByType('navigation')[0].type === 'reload';
  if (!results.reload) {
    await playAndSeek();
    await upload();
  }
  results.resources = performance.getEntriesByType('resource').map(entry => ({
    name: new URL(entry.name).pathname, encoded: entry.encodedBodySize, decoded: entry.decodedBodySize,
    transfer: entry.transferSize }));
  const nav = performance.getEntriesByType('navigation')[0];
  results.page = { encoded: nav.encodedBodySize, decoded: nav.decodedBodySize };
}

main().then(() => { document.title = 'done'; },
            error => { results.error = String(error); document.title = 'failed'; });
"""


def png(width, height):
    """An RGB PNG of one colour, with the stdlib (PNG spec: signature, IHDR, IDAT, IEND)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x20\x80\xc0" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def write_wav(path):
    """A 480 Hz tone (100 frames a period, so one period repeats exactly), with the stdlib `wave`."""
    period = array.array("h", (int(8000 * math.sin(2 * math.pi * (i // 2) / 100)) for i in range(200))).tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(WAV_RATE)
        out.writeframes(period * (WAV_RATE * WAV_SECONDS // 100))


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe: it reads fd 3, writes fd 4."""

    def __init__(self, user_data_dir):
        binary = shutil.which(CHROMIUM)
        if binary is None:
            pytest.fail(f"{CHROMIUM} is not installed: apt-get install -y chromium (see .ci/run)")
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()
        args = ["--headless=new", "--remote-debugging-pipe", f"--user-data-dir={user_data_dir}",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio", "about:blank"]
        if os.geteuid() == 0:
            args.insert(0, "--no-sandbox")     # Chromium's sandbox refuses to run as root
        self.stderr = open(os.path.join(user_data_dir, "..", "chromium.stderr"), "w+b")
        # bash (dash takes no descriptor above 9) puts the pipes on descriptors 3 and 4, where Chromium looks for them.
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} '
                              f'{to_browser_r}<&- {from_browser_w}>&-', binary, *args],
            pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL,
            stdout=self.stderr, stderr=self.stderr)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def reason(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-3000:]

    def send(self, method, params=None, session=None, timeout=PAGE_TIMEOUT):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        except BrokenPipeError:
            pytest.fail(f"Chromium went away before {method}:\n{self.reason()}")
        while True:
            reply = self.receive(timeout, f"the answer to {method}")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def receive(self, timeout, waiting_for):
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_browser], [], [], left)[0]:
                pytest.fail(f"Chromium sent nothing within {timeout}s while waiting for {waiting_for}:\n"
                            f"{self.reason()}")
            data = os.read(self.from_browser, 1 << 20)
            if not data:
                pytest.fail(f"Chromium exited ({self.process.wait(5)}) while waiting for {waiting_for}:\n"
                            f"{self.reason()}")
            self.buffer += data
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def evaluate(self, session, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for_title(self, session, waiting_for):
        deadline = time.monotonic() + PAGE_TIMEOUT
        while time.monotonic() < deadline:
            title = self.evaluate(session, "document.title")
            if title in ("done", "failed"):
                return title, self.evaluate(session, "window.results")
            time.sleep(0.1)
        pytest.fail(f"the page did not finish {waiting_for} within {PAGE_TIMEOUT}s; "
                    f"results so far: {self.evaluate(session, 'window.results')}")

    def close(self):
        try:
            os.write(self.to_browser, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.process.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(10)
        finally:
            os.close(self.to_browser)
            os.close(self.from_browser)
            self.stderr.close()


def log_lines(log):
    pattern = re.compile(r'"(\S+) (\S+) HTTP/1\.[01]" (\d{3}) (\d+)$')
    return [(m[1], m[2], int(m[3]), int(m[4])) for m in map(pattern.search, log.read_text().splitlines()) if m]


def test_a_browser_renders_plays_uploads_and_revalidates(tmp_path):
    started = time.monotonic()
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(INDEX_HTML, encoding="utf-8")
    (site / "site.css").write_text(SITE_CSS)                        # gzip made in memory
    (site / "app.mjs").write_text(APP_MJS)
    (site / "app.mjs.gz").write_bytes(gzip.compress(APP_MJS.encode(), mtime=0))   # a gzip sibling
    (site / "helper.js").write_text(HELPER_JS)
    (site / "helper.js.br").write_bytes(compress_stored(HELPER_JS.encode()))     # a br sibling, if asked
    (site / "helper.js.gz").write_bytes(gzip.compress(HELPER_JS.encode(), mtime=0))
    (site / "pixel.png").write_bytes(png(3, 2))
    write_wav(site / "tone.wav")
    wav_size = (site / "tone.wav").stat().st_size
    log = tmp_path / "access.log"

    # Freshness: the site's files are new, so their heuristic freshness (a
    # tenth of their age, RFC 9111 §4.2.2) is over by the time of the
    # reload, which revalidates them.  The audio is made an hour old: what
    # Chromium's media loader deems not worth caching (stale at once, or
    # no-cache or max-age=0, whatever --cache-control says) it reads as one
    # stream, and a seek then asks for no range.
    an_hour_ago = time.time() - 3600
    os.utime(site / "tone.wav", (an_hour_ago, an_hour_ago))
    process = ServerProcess("core", site, extra_args=["--access-log", str(log)])
    browser = None
    try:
        server = RunningServer("127.0.0.1", process.wait_until_listening(), site, "core")
        (tmp_path / "profile").mkdir()
        browser = DevTools(str(tmp_path / "profile"))
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Page.enable", session=session)
        browser.send("Network.enable", session=session)
        browser.send("Page.navigate", {"url": f"http://127.0.0.1:{server.port}/files/index.html"}, session)
        title, results = browser.wait_for_title(session, "loading")
        assert title == "done", results

        # It rendered, its CSS applied and its module (and the module it imports) ran.
        assert results["color"] == "rgb(1, 2, 3)"
        assert results["moduleRan"] and results["helper"] == "helper ran"
        assert results["naturalWidth"] == 3
        # The audio played, and after the seek to its middle played on.
        assert results["duration"] == pytest.approx(WAV_SECONDS, abs=0.1)
        assert results["playedFrom"] >= 0.2 and results["playedAfterSeek"] >= WAV_SECONDS / 2
        # The upload came back byte for byte; a second with If-None-Match: * is refused.
        assert results["uploadStatus"] == 201 and results["uploadMatches"]
        assert results["secondUploadStatus"] == 412
        # Text came compressed: fewer bytes on the wire than it decodes to.
        sizes = {entry["name"]: entry for entry in results["resources"]}
        for name in ("/files/site.css", "/files/app.mjs"):
            assert 0 < sizes[name]["encoded"] < sizes[name]["decoded"], sizes[name]
        # Chromium offers br to 127.0.0.1 (a trustworthy origin): helper.js came as its .br
        # sibling (stored meta-blocks: a few bytes more than the text) and decoded into the module.
        assert sizes["/files/helper.js"]["decoded"] == len(HELPER_JS)
        assert sizes["/files/helper.js"]["encoded"] == len(compress_stored(HELPER_JS.encode()))

        # The seek asked for the middle of the file: Range: bytes=N- with N > 0 (Chromium
        # writes the end in, bytes=N-<size - 1>), answered 206 with size - N bytes.
        ranges = [event["params"]["headers"].get("Range") or event["params"]["headers"].get("range")
                  for event in browser.events if event.get("method") == "Network.requestWillBeSentExtraInfo"]
        starts = [int(m[1]) for m in (re.fullmatch(r"bytes=(\d+)-(\d*)", value or "") for value in ranges)
                  if m and m[2] in ("", str(wav_size - 1))]
        assert any(start > 0 for start in starts), ranges
        wav_answers = [(status, size) for method, path, status, size in log_lines(log) if path == "/files/tone.wav"]
        assert any(status == 206 and size == wav_size - start for status, size in wav_answers
                   for start in starts if start > 0), (wav_answers, starts)

        # A reload revalidates: the page and its unchanged files get 304.
        logged_before = len(log_lines(log))
        browser.send("Page.reload", {}, session)
        title, results = browser.wait_for_title(session, "reloading")
        assert title == "done" and results["reload"], results
        assert results["color"] == "rgb(1, 2, 3)" and results["naturalWidth"] == 3
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            after = log_lines(log)[logged_before:]
            if ("GET", "/files/index.html", 304, 0) in after:
                break
            time.sleep(0.1)
        assert ("GET", "/files/index.html", 304, 0) in after, after
        revalidated = {path for method, path, status, _ in after if status == 304}
        assert {"/files/index.html", "/files/site.css", "/files/app.mjs"} <= revalidated, after
    finally:
        if browser is not None:
            browser.close()
        assert process.stop(signal.SIGTERM) == 0
        process.close()
    assert time.monotonic() - started < 60
