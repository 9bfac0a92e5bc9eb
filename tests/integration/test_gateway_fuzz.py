"""Fuzzing the gateway's HTTP and JSON handling with hypothesis, over raw sockets.

A real gateway process in front of a stub upstream gets malformed framing (bad request lines,
bad chunked encoding, absurd content lengths, both Content-Length and Transfer-Encoding),
huge and many headers, invalid UTF-8, deeply nested and mistyped JSON, and pipelined requests
that mix good and bad ones. After each case the process is alive, a well-formed request on a
fresh connection gets a 200, and a stream of good requests that runs all along on a
connection of its own has had nothing but 200s. No case may be answered with a 5xx, and the
responses on one connection come in the order of its requests.

INFERPLANE_FUZZ_EXAMPLES sets the examples per test (default 25, for `make test`); the
count of cases run is printed at the end. See docs/security-fuzzing.md.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferplane.gateway.wire import server
from tests.support.gateway_process import (
    GatewayProcess,
    StubProcess,
    api_key,
    endpoint,
    service,
)

EXAMPLES = int(os.environ.get("INFERPLANE_FUZZ_EXAMPLES", "25"))
"""Examples per test: small for `make test`, raise it for a longer run."""

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120 + EXAMPLES)]
"""A longer run gets a longer per-test limit: a second per example beyond the usual 120 s."""
KEY = "sk-fuzz"
BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2}'
WAIT = 0.4
"""Seconds of silence after which a case hangs up (once it has the answers it expects): a
malformed request is answered at once; one the gateway still waits on (a body shorter than
its length) is not answered at all."""
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
PACE = 0.01
"""Seconds between the good stream's requests: steady, without taking the 2 cores the
cases and the gateway need."""
CASES, WRONG_KEYS = "127.0.0.2", "127.0.0.3"
"""The loopback addresses the cases come from, apart from the good requests' 127.0.0.1:
a wrong key counts against its address (10 a minute, then 429s), so the cases that send
one have an address of their own."""
STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")


def request(
    body: bytes = BODY,
    *,
    path: bytes = b"/v1/chat/completions",
    headers: tuple[bytes, ...] = (),
    close: bool = False,
) -> bytes:
    head = [b"POST " + path + b" HTTP/1.1", b"Host: gw", b"Authorization: Bearer " + KEY.encode()]
    head += [b"Content-Type: application/json", b"Content-Length: %d" % len(body), *headers]
    if close:
        head.append(b"Connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + body


GOOD = request()


@dataclass
class Cases:
    """How many cases ran, and where to send them."""

    gateway: GatewayProcess
    count: int = 0

    def exchange(self, raw: bytes, *, expect: int = 0, source: str = CASES) -> bytes:
        """Send `raw` on a fresh connection from `source`; what came back until the gateway
        closed it, or fell silent for WAIT seconds once `expect` responses had come."""
        self.count += 1
        address = ("127.0.0.1", self.gateway.port)
        with socket.create_connection(address, timeout=30, source_address=(source, 0)) as sock:
            with contextlib.suppress(OSError):  # it answered and closed before taking it all
                sock.sendall(raw)
            return _read_all(sock, expect)

    def check(self, received: bytes) -> None:
        """The case's answers, then the gateway's health."""
        statuses = [int(s) for s in STATUS.findall(received)]
        assert all(s < 500 for s in statuses), received[:2000]
        assert self.gateway.process is not None and self.gateway.process.poll() is None
        with socket.create_connection(("127.0.0.1", self.gateway.port), timeout=30) as sock:
            sock.sendall(request(close=True))
            answer = _read_all(sock)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:2000]


def _read_all(sock: socket.socket, expect: int = 1) -> bytes:
    received = b""
    deadline = time.monotonic() + 30
    sock.settimeout(WAIT)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if len(STATUS.findall(received)) >= expect:
                break
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received


@dataclass
class Traffic:
    """Good requests, one after another on one keep-alive connection, while the cases run."""

    port: int
    statuses: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=30) as sock:
                reader = sock.makefile("rb")
                while not self._stop.is_set():
                    sock.sendall(GOOD)
                    self.statuses.append(_read_response(reader))
                    if self.statuses[-1] != 200:
                        self.failures.append(f"status {self.statuses[-1]}")
                    self._stop.wait(PACE)
        except Exception as error:  # any failure of the good stream is the finding
            self.failures.append(repr(error))


def _read_response(reader: Any) -> int:
    status = int(reader.readline().split(b" ")[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    reader.read(length)
    return status


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StubProcess]:
    process = StubProcess(tmp_path_factory.mktemp("fuzz-stub"), "a").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, stub: StubProcess
) -> Iterator[GatewayProcess]:
    config = [
        service("m", [{"deployment": "d"}]),
        endpoint("a-0", stub.url, "d"),
        api_key("k", KEY),
    ]
    process = GatewayProcess(tmp_path_factory.mktemp("fuzz-gateway"), config=config).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def traffic(gateway: GatewayProcess) -> Iterator[Traffic]:
    running = Traffic(gateway.port).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def cases(
    gateway: GatewayProcess, traffic: Traffic, request: pytest.FixtureRequest
) -> Iterator[Cases]:
    made = Cases(gateway)
    started = time.monotonic()
    yield made
    seconds = time.monotonic() - started
    line = (
        f"gateway fuzz: {made.count} cases in {seconds:.1f} s ({EXAMPLES} examples per test), "
        f"{len(traffic.statuses)} good requests alongside"
    )
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():  # shown without -s
        reporter.write_line(line)


@pytest.fixture
def fuzz(cases: Cases, traffic: Traffic) -> Iterator[Cases]:
    """The cases, with the stream of good requests checked after each test."""
    yield cases
    assert not traffic.failures, traffic.failures


# -- strategies ------------------------------------------------------------------------------

METHODS = st.sampled_from([b"POST", b"GET", b"PUT", b"DELETE", b"P\x00ST", b"", b"POST POST"])
PATHS = st.one_of(
    st.sampled_from([b"/v1/chat/completions", b"/v1/completions", b"/v2/models/m/generate"]),
    st.binary(max_size=60),
)
VERSIONS = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/9.9", b"HTTX/1.1", b"HTTP/1", b""])
ENDS = st.sampled_from([b"\r\n", b"\n", b"\r", b"", b"\r\r\n"])
LENGTHS = st.one_of(
    st.integers(-(10**20), 10**20).map(lambda n: str(n).encode()),
    st.sampled_from([b"abc", b"1e3", b" 5", b"5 ", b"+5", b"0x10", b"", b"5, 5", b"\xff"]),
)
CHUNK_SIZES = st.one_of(
    st.integers(0, 64).map(lambda n: b"%x" % n),
    st.sampled_from([b"-1", b"zz", b"f" * 20, b"0x10", b" 5", b"5;ext=1", b"5 ", b""]),
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = ("model", "messages", "n", "max_tokens", "max_completion_tokens", "stream")
FIELDS += ("stream_options", "priority", "prompt", "input")


@st.composite
def request_lines(draw: st.DrawFn) -> bytes:
    line = draw(METHODS) + b" " + draw(PATHS) + b" " + draw(VERSIONS) + draw(ENDS)
    return line + draw(st.binary(max_size=40)) + b"\r\n\r\n"


@st.composite
def chunked(draw: st.DrawFn) -> bytes:
    pieces = []
    for size, data, end in draw(
        st.lists(st.tuples(CHUNK_SIZES, st.binary(max_size=70), ENDS), max_size=4)
    ):
        pieces.append(size + b"\r\n" + data + end)
    if draw(st.booleans()):
        pieces.append(b"0\r\n\r\n")
    head = [
        b"POST /v1/chat/completions HTTP/1.1",
        b"Host: gw",
        b"Authorization: Bearer " + KEY.encode(),
    ]
    head.append(
        b"Transfer-Encoding: "
        + draw(st.sampled_from([b"chunked", b"gzip, chunked", b"chunked, gzip", b"chunked\x00"]))
    )
    return b"\r\n".join(head) + b"\r\n\r\n" + b"".join(pieces)


@st.composite
def content_lengths(draw: st.DrawFn) -> bytes:
    body = draw(st.sampled_from([BODY, b"", BODY[:10], BODY + BODY]))
    lengths = draw(st.lists(LENGTHS, min_size=1, max_size=2))
    head = [
        b"POST /v1/chat/completions HTTP/1.1",
        b"Host: gw",
        b"Authorization: Bearer " + KEY.encode(),
    ]
    head += [b"Content-Length: " + length for length in lengths]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@st.composite
def smuggled(draw: st.DrawFn) -> bytes:
    """Content-Length and Transfer-Encoding both: the classic request-smuggling shape, with a
    second request hidden where one parser sees a body and another a new request."""
    hidden = request(b'{"model":"m","prompt":"smuggled"}', path=b"/v1/completions")
    body = draw(
        st.sampled_from(
            [b"0\r\n\r\n" + hidden, b"%x\r\n" % len(hidden) + hidden + b"\r\n0\r\n\r\n"]
        )
    )
    te = b"Transfer-Encoding: " + draw(
        st.sampled_from([b"chunked", b" chunked", b"identity", b"x"])
    )
    cl = b"Content-Length: %d" % draw(st.sampled_from([0, 5, len(body)]))
    first, second = (te, cl) if draw(st.booleans()) else (cl, te)
    head = [b"POST /v1/chat/completions HTTP/1.1", b"Host: gw", first, second]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    """OpenAI-shaped bodies whose fields hold anything JSON can."""
    body = {
        name: draw(JSON_VALUES) for name in draw(st.lists(st.sampled_from(FIELDS), unique=True))
    }
    if draw(st.booleans()):
        body["model"] = "m"
    return orjson.dumps(body)


def nested(depth: int, shape: str) -> bytes:
    if shape == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


DEPTHS = st.one_of(
    st.sampled_from([200, 254, 255, 256, 300, 1000, 1024, 1025, 100_000]), st.integers(1, 5000)
)


# -- cases -----------------------------------------------------------------------------------


@FUZZ
@given(raw=request_lines())
def test_bad_request_lines(fuzz: Cases, raw: bytes) -> None:
    fuzz.check(fuzz.exchange(raw))


@FUZZ
@given(raw=chunked())
def test_bad_chunked_encoding(fuzz: Cases, raw: bytes) -> None:
    fuzz.check(fuzz.exchange(raw))


@FUZZ
@given(raw=content_lengths())
def test_absurd_and_negative_content_lengths(fuzz: Cases, raw: bytes) -> None:
    fuzz.check(fuzz.exchange(raw))


@FUZZ
@given(raw=smuggled())
def test_content_length_and_transfer_encoding_together(fuzz: Cases, raw: bytes) -> None:
    received = fuzz.exchange(raw)
    assert len(STATUS.findall(received)) <= 1, "a smuggled request was answered"
    fuzz.check(received)


@FUZZ
@given(
    size=st.sampled_from([8 << 10, 60 << 10, 70 << 10, 1 << 20, 8 << 20]),
    name=st.sampled_from([b"X-Big", b"Authorization"]),
)
def test_huge_headers(fuzz: Cases, size: int, name: bytes) -> None:
    raw = request(headers=(name + b": " + b"a" * size,), close=True)
    source = WRONG_KEYS if name == b"Authorization" else CASES
    received = fuzz.exchange(raw, expect=1, source=source)
    expected: tuple[bytes, ...] = (b"HTTP/1.1 200 ",)
    if size > server.MAX_HEAD:
        expected = (b"HTTP/1.1 431 ",)
    elif name == b"Authorization":
        expected = (b"HTTP/1.1 401 ", b"HTTP/1.1 429 ")  # a longer token than the key's
    assert received.startswith(expected), received[:300]
    fuzz.check(received)


@FUZZ
@given(count=st.sampled_from([100, 1000, 10_000, 100_000]), distinct=st.booleans())
def test_many_headers(fuzz: Cases, count: int, distinct: bool) -> None:
    headers = tuple(b"X-H%d: v" % (i if distinct else 0) for i in range(count))
    received = fuzz.exchange(request(headers=headers, close=True), expect=1)
    big = sum(len(h) + 2 for h in headers) > server.MAX_HEAD
    assert received.startswith(b"HTTP/1.1 431 " if big else b"HTTP/1.1 200 "), received[:300]
    fuzz.check(received)


@FUZZ
@given(
    junk=st.binary(min_size=1, max_size=8).filter(lambda b: not _utf8(b)),
    where=st.sampled_from(["body", "content", "header", "path", "key"]),
)
def test_invalid_utf8(fuzz: Cases, junk: bytes, where: str) -> None:
    raw = {
        "body": request(BODY[:20] + junk + BODY[20:], close=True),
        "content": request(BODY.replace(b'"hi"', b'"h' + junk + b'i"'), close=True),
        "header": request(headers=(b"X-Session-Id: " + junk.replace(b"\n", b""),), close=True),
        "path": request(path=b"/v1/chat/completions" + junk.replace(b" ", b""), close=True),
        "key": request(close=True).replace(KEY.encode(), KEY.encode() + junk.replace(b"\r", b"")),
    }[where]
    fuzz.check(fuzz.exchange(raw, source=WRONG_KEYS if where == "key" else CASES))


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


@FUZZ
@given(
    depth=DEPTHS,
    shape=st.sampled_from(["array", "object"]),
    where=st.sampled_from(["body", "field", "stream"]),
)
def test_deeply_nested_json(fuzz: Cases, depth: int, shape: str, where: str) -> None:
    deep = nested(depth, shape)
    if where == "body":
        body = deep
    else:
        stream = b"true" if where == "stream" else b"false"
        body = b'{"model":"m","stream":%s,"messages":[{"role":"user","content":"hi"}],"x":%s}' % (
            stream,
            deep,
        )
    fuzz.check(fuzz.exchange(request(body, close=True), expect=1))


@FUZZ
@given(
    body=json_bodies(),
    path=st.sampled_from([b"/v1/chat/completions", b"/v1/completions", b"/v1/embeddings"]),
)
def test_mistyped_json_fields(fuzz: Cases, body: bytes, path: bytes) -> None:
    received = fuzz.exchange(request(body, path=path, close=True), expect=1)
    status = STATUS.match(received)
    assert status is not None, received[:500]
    if status.group(1) != b"200":
        error = orjson.loads(received.partition(b"\r\n\r\n")[2])["error"]
        assert error["message"] and error["type"], error
    fuzz.check(received)


BAD = st.one_of(request_lines(), chunked(), content_lengths(), json_bodies().map(request))


@FUZZ
@given(first=st.integers(0, 3), bad=BAD, after=st.integers(0, 2))
def test_pipelined_good_and_bad(fuzz: Cases, first: int, bad: bytes, after: int) -> None:
    """Good requests, then a bad one, then good ones again, in one write: each good request
    before the bad one is answered, in order, before anything the bad one gets."""
    received = fuzz.exchange(GOOD * first + bad + GOOD * after, expect=first)
    statuses = [int(s) for s in STATUS.findall(received)]
    assert statuses[:first] == [200] * first, statuses
    fuzz.check(received)


def test_the_good_stream_ran_alongside_and_only_got_200s(fuzz: Cases, traffic: Traffic) -> None:
    deadline = time.monotonic() + 30  # a bound, not a claim about speed
    while not traffic.statuses and time.monotonic() < deadline:
        time.sleep(0.05)
    assert traffic.statuses and set(traffic.statuses) == {200}
