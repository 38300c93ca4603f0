"""The HTTP sink against a real server on loopback that answers, fails, stalls and refuses.

Each test scripts the server's answers (see ``remote_fixtures.Endpoint``) and checks what
arrived, what the sink counted, and what its errors say.
"""

import json
import logging
import uuid
from typing import Any, Dict, List

import pytest
from support.banking_runs import run_banking
from support.remote_fixtures import Endpoint
from support.services import free_port

from doge_datagen import DeliveryError
from doge_datagen.cli.main import event_row
from doge_datagen.errors import ConfigurationError, RecordError
from doge_datagen.sinks.http import HttpSink
from doge_datagen.sinks.registry import Records, SinkURLError, build_sink

RECORDS = Records(row=event_row, key=lambda subject, transition: str(subject.user_id))


def rows(n: int) -> List[Dict[str, Any]]:
    return [{"n": i, "name": f"row {i}"} for i in range(n)]


def send(sink: HttpSink, values: List[Dict[str, Any]]) -> None:
    """Collect ``values`` (the value function returns the subject) and close."""
    sink.open()
    try:
        for value in values:
            sink.collect(0, value, None)  # type: ignore[arg-type]
    finally:
        sink.close()


def sink_for(endpoint: Endpoint, **options: Any) -> HttpSink:
    options.setdefault("backoff", 0.01)
    return HttpSink(endpoint.url + "/ingest", lambda ts, subject, t: subject, **options)


@pytest.mark.parametrize("format", ["json", "ndjson"])
def test_every_row_arrives_in_batches_with_the_headers(endpoint: Endpoint, format: str) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    url = (
        f"{endpoint.url}/ingest?format={format}&batch_size=50&token_env=DOGE_TEST_HTTP_TOKEN"
        "&header.X-Source=doge&query.dataset=bank"
    )
    import os

    os.environ["DOGE_TEST_HTTP_TOKEN"] = token
    try:
        sink = build_sink(url, RECORDS)
    finally:
        del os.environ["DOGE_TEST_HTTP_TOKEN"]
    sent = run_banking(sink)

    assert len(sent) > 100
    assert endpoint.rows() == sent
    assert (sink.delivered, sink.failed) == (len(sent), 0)
    sizes = [len(body.splitlines()) if format == "ndjson" else len(json.loads(body))
             for _, body in endpoint.accepted]  # fmt: skip
    assert sizes[:-1] == [50] * (len(sizes) - 1) and 0 < sizes[-1] <= 50
    path, headers, _ = endpoint.requests[0]
    assert path == "/ingest?dataset=bank"
    assert headers["authorization"] == f"Bearer {token}"
    assert headers["x-source"] == "doge"
    expected_type = "application/x-ndjson" if format == "ndjson" else "application/json"
    assert headers["content-type"] == expected_type
    assert token not in repr(sink) and token not in sink.name
    # One key per batch: all different.
    keys = [h["idempotency-key"] for _, h, _ in endpoint.requests]
    assert len(set(keys)) == len(keys)


def test_429_and_5xx_are_retried_with_the_same_batch_and_key(endpoint: Endpoint) -> None:
    endpoint.script = [
        (503, {}, b"busy"),
        (429, {"Retry-After": "0"}, b""),
        (500, {}, b"oops"),
    ]
    sink = sink_for(endpoint, batch_size=10)
    send(sink, rows(25))

    assert endpoint.rows() == rows(25)
    assert (sink.delivered, sink.failed) == (25, 0)
    assert sink.requests == 3 + 3  # three failures of the first batch, then three batches
    first_keys = {h["idempotency-key"] for _, h, _ in endpoint.requests[:4]}
    assert len(first_keys) == 1  # the same batch, sent four times
    assert len({body for _, _, body in endpoint.requests[:4]}) == 1


def test_retry_after_is_the_pause(endpoint: Endpoint) -> None:
    endpoint.script = [(429, {"Retry-After": "1"}, b"slow down"), (503, {}, b"")]
    sink = sink_for(endpoint, batch_size=5, backoff=0.05)
    pauses: List[float] = []
    pause = sink._pause
    sink._pause = lambda seconds: (pauses.append(seconds), pause(seconds))  # type: ignore
    send(sink, rows(5))

    assert endpoint.rows() == rows(5)
    # The server's second, then the sink's own second pause (the first doubled).
    assert pauses == [1.0, 0.1]


def test_retry_after_beyond_max_time_fails_the_batch_at_once(endpoint: Endpoint) -> None:
    endpoint.script = [(503, {"Retry-After": "3600"}, b"")]
    sink = sink_for(endpoint, batch_size=5, max_time=5)
    with pytest.raises(DeliveryError) as raised:
        send(sink, rows(5))
    assert "Retry-After 3600 s goes past max_time" in str(raised.value)
    assert (sink.delivered, sink.failed) == (0, 5)
    assert len(endpoint.requests) == 1


def test_a_final_status_is_not_retried_and_names_the_answer(endpoint: Endpoint) -> None:
    token = f"tok-{uuid.uuid4().hex}"
    # The server echoes the token in its answer: the message masks it.
    endpoint.script = [(400, {}, json.dumps({"error": "bad", "auth": f"Bearer {token}"}).encode())]
    sink = sink_for(endpoint, batch_size=4, token=token)
    with pytest.raises(DeliveryError) as raised:
        send(sink, rows(10))
    error = raised.value
    assert len(endpoint.requests) == 1
    assert "HTTP 400" in str(error) and "bad" in str(error)
    assert token not in str(error) and "***" in str(error)
    assert (error.delivered, error.failed) == (0, 4)
    assert [json.loads(p) for p in error.pending] == rows(4)


def test_retries_run_out_and_the_rest_is_counted(endpoint: Endpoint) -> None:
    endpoint.script = [(502, {}, b"")] * 3
    sink = sink_for(endpoint, batch_size=5, retries=2)
    sink.open()
    with pytest.raises(DeliveryError) as raised:
        for value in rows(5):
            sink.collect(0, value, None)  # type: ignore[arg-type]
    assert "3 attempts" in str(raised.value) and "HTTP 502" in str(raised.value)
    for value in rows(3):
        sink.collect(0, value, None)  # type: ignore[arg-type]
    sink.close()  # the server answers again: the later rows arrive
    assert (sink.delivered, sink.failed) == (3, 5)
    assert endpoint.rows() == rows(3)


def test_a_stalled_server_is_given_up_on_within_max_time(endpoint: Endpoint) -> None:
    endpoint.script = [("stall", 30)] * 10
    sink = sink_for(endpoint, batch_size=5, timeout=0.3, max_time=1.0)
    with pytest.raises(DeliveryError) as raised:
        send(sink, rows(5))
    text = str(raised.value)
    assert "no answer" in text and "max_time 1 s" in text
    assert (sink.delivered, sink.failed) == (0, 5)
    assert 2 <= len(endpoint.requests) <= 5  # retried, each attempt cut at 0.3 s


def test_a_dropped_connection_is_retried(endpoint: Endpoint) -> None:
    endpoint.script = [("drop",)]
    sink = sink_for(endpoint, batch_size=5)
    send(sink, rows(5))
    assert endpoint.rows() == rows(5)
    assert len(endpoint.requests) == 2


def test_a_refused_connection_fails_with_counts_and_no_secret(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = f"pw-{uuid.uuid4().hex}"
    url = f"http://doge:{secret}@127.0.0.1:{free_port()}/x?max_time=1&batch_size=20"
    sink = build_sink(url, RECORDS)
    with pytest.raises(DeliveryError) as raised:
        run_banking(sink, subjects=300, ticks=100)
    error = raised.value
    assert "ConnectionRefusedError" in str(error)
    assert sink.failed > 0 and sink.delivered == 0
    shown = [str(error), repr(error), repr(sink), sink.name, caplog.text, *capfd.readouterr()]
    assert all(secret not in text for text in shown)


def test_a_server_back_between_batches_takes_the_next(endpoint: Endpoint) -> None:
    endpoint.stop()
    sink = sink_for(endpoint, batch_size=5, max_time=0.5)
    sink.open()
    with pytest.raises(DeliveryError):
        for value in rows(5):
            sink.collect(0, value, None)  # type: ignore[arg-type]
    endpoint.start()
    for value in rows(5):
        sink.collect(0, value, None)  # type: ignore[arg-type]
    sink.close()
    assert (sink.delivered, sink.failed) == (5, 5)
    assert endpoint.rows() == rows(5)


def test_bad_settings_are_named() -> None:
    with pytest.raises(SinkURLError, match="unknown setting 'batchsize'"):
        build_sink("http://h/x?batchsize=3", RECORDS)
    with pytest.raises(ConfigurationError, match="format must be one of json, ndjson"):
        build_sink("http://h/x?format=xml", RECORDS)
    with pytest.raises(ConfigurationError, match="max_time must be a positive number"):
        build_sink("http://h/x?max_time=0", RECORDS)
    with pytest.raises(SinkURLError, match="environment variable 'NOPE_NOT_SET'"):
        build_sink("http://h/x?token_env=NOPE_NOT_SET", RECORDS)
    with pytest.raises(ConfigurationError, match="ca_file applies to https"):
        build_sink("http://h/x?ca_file=/etc/hosts", RECORDS)
    sink = sink_for(Endpoint(), batch_size=2)
    with pytest.raises(RecordError, match="cannot encode"):
        sink.collect(0, {"x": object()}, None)  # type: ignore[arg-type]


def self_signed(where: Any) -> Any:
    """A certificate for 127.0.0.1 signed by itself, and its key: (cert path, key path)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doge test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = where / "cert.pem", where / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_with_the_servers_authority_and_without_it(tmp_path: Any) -> None:
    import ssl

    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Endpoint().start(context)
    try:
        base = f"https://127.0.0.1:{server.port}/in?batch_size=10&max_time=5"
        trusted = build_sink(f"{base}&ca_file={cert}", RECORDS)
        sent = run_banking(trusted, subjects=300, ticks=100)
        assert server.rows() == sent and trusted.delivered == len(sent) > 10

        untrusted = build_sink(base, RECORDS)
        with pytest.raises(DeliveryError) as raised:
            run_banking(untrusted, subjects=300, ticks=100)
        assert "SSLCertVerificationError" in str(raised.value)
        assert "1 attempt " in str(raised.value)  # not retried
        assert untrusted.delivered == 0 and untrusted.failed == 10
    finally:
        server.stop()


def test_hurry_ends_the_pause_and_leaves_one_attempt(endpoint: Endpoint) -> None:
    import threading
    import time

    endpoint.script = [(503, {"Retry-After": "20"}, b"")] * 50
    sink = sink_for(endpoint, batch_size=5, max_time=60)
    errors: List[BaseException] = []

    def run() -> None:
        try:
            send(sink, rows(5))
        except DeliveryError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while not endpoint.requests:  # the first attempt was answered: the sink now waits 20 s
        time.sleep(0.01)
    sink.hurry()
    thread.join(15)  # a watchdog only: without hurry() the pause alone is 20 s
    assert not thread.is_alive()
    assert len(errors) == 1 and (sink.delivered, sink.failed) == (0, 5)
    # The pause ended: at most the one attempt hurry() leaves, none after it.
    assert 1 <= len(endpoint.requests) <= 2
