"""Hosts that must never be reached: the host policy, the bounded HTTP client, image fetches.

No packet leaves loopback: refused hosts are refused before anything is sent (a resolver seam
maps test names to the addresses under test), and every server here listens on 127.0.0.1.
"""

from __future__ import annotations

import time

import pytest

from claimdiff.config import ImageConfig
from claimdiff.errors import (
    ConfigError,
    DeadlineExceededError,
    HostRefusedError,
    ImageError,
    ResponseTooLargeError,
)
from claimdiff.io import http
from claimdiff.io.hosts import HostPolicy, address_class, system_resolver
from claimdiff.io.images import read_bytes
from claimdiff.synth.render import png_bytes
from tests.support.http_servers import body, redirect, serve, trickle

REFUSED = {
    "loopback": "127.0.0.1", "loopback-other": "127.8.9.10", "loopback-v6": "::1",
    "unspecified": "0.0.0.0", "unspecified-v6": "::",
    "aws-metadata": "169.254.169.254", "link-local": "169.254.1.1",
    "link-local-v6": "fe80::1", "aws-metadata-v6": "fd00:ec2::254",
    "private-10": "10.0.0.7", "private-172": "172.16.5.4", "private-192": "192.168.1.1",
    "ula": "fc00::1", "cgnat-alibaba-metadata": "100.100.100.200",
    "oracle-metadata": "192.0.0.192", "documentation": "192.0.2.1", "benchmark": "198.18.0.1",
    "multicast": "224.0.0.1", "multicast-v6": "ff02::1", "broadcast": "255.255.255.255",
    "reserved": "240.0.0.1", "mapped-loopback": "::ffff:127.0.0.1",
    "mapped-metadata": "::ffff:169.254.169.254", "mapped-hex": "::ffff:7f00:1",
    "6to4-private": "2002:0a00:0001::1", "nat64-metadata": "64:ff9b::a9fe:a9fe",
    "teredo-private": "2001:0:4136:e378:8000:63bf:f5ff:fffe",
}


def resolving_to(address: str):
    return lambda host, port: [address]


@pytest.mark.parametrize("address", list(REFUSED.values()), ids=list(REFUSED))
def test_every_non_public_class_is_refused_by_name(address: str):
    policy = HostPolicy.of([], resolver=resolving_to(address))
    with pytest.raises(HostRefusedError, match=r"refused by the host policy: .* address \(add"):
        policy.vet("images.example", 80)


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946",
                                     "1.1.1.1"])
def test_public_addresses_pass(address: str):
    assert HostPolicy.of([], resolver=resolving_to(address)).vet("x.example", 443) == [address]


def test_one_private_answer_among_public_ones_refuses_the_host():
    policy = HostPolicy.of([], resolver=lambda host, port: ["1.1.1.1", "10.0.0.1"])
    with pytest.raises(HostRefusedError, match=r"10.0.0.1"):
        policy.vet("rebinding.example", 80)


@pytest.mark.parametrize("spelling", ["2130706433", "0x7f.1", "0177.0.0.1", "127.1",
                                      "0x7f000001", "017700000001", "127.000.000.001",
                                      "[::ffff:127.0.0.1]", "[::1]", "localhost"])
def test_numeric_spellings_of_loopback_resolve_to_what_they_are(spelling: str):
    """The system resolver reads these without any DNS query: judged by the address."""
    host = spelling.strip("[]")
    with pytest.raises(HostRefusedError, match=r"loopback"):
        HostPolicy.of([]).vet(host, 80)


def test_allow_list_by_host_address_and_network():
    assert HostPolicy.of(["10.0.0.0/8"], resolver=resolving_to("10.2.3.4")).vet("a", 80)
    assert HostPolicy.of(["10.2.3.4"], resolver=resolving_to("10.2.3.4")).vet("a", 80)
    assert HostPolicy.of(["Images.Internal."], resolver=resolving_to("10.2.3.4")).vet(
        "images.internal", 80)
    with pytest.raises(HostRefusedError):
        HostPolicy.of(["10.0.0.0/8"], resolver=resolving_to("192.168.0.1")).vet("a", 80)
    with pytest.raises(ConfigError, match=r"neither a host name"):
        HostPolicy.of(["10.0.0.0/99"])


def test_address_class_names_the_reason():
    import ipaddress

    assert address_class(ipaddress.ip_address("169.254.169.254")).startswith("link-local")
    assert "inside an IPv6" in address_class(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert address_class(ipaddress.ip_address("8.8.8.8")) is None


def test_unresolvable_host_is_refused():
    with pytest.raises(HostRefusedError, match=r"does not resolve"):
        system_resolver("no-such-host.invalid", 80)


# --- the bounded client, against real loopback servers -----------------------------------------

LOOPBACK = HostPolicy.of(["127.0.0.1"])


def test_fetch_allowed_host_and_refuse_it_by_default():
    with serve({"/a.png": body(b"PNGDATA")}) as base:
        response = http.request("GET", f"{base}/a.png", deadline_s=10, max_bytes=100,
                                policy=LOOPBACK)
        assert (response.status, response.body) == (200, b"PNGDATA")
        with pytest.raises(HostRefusedError, match=r"127.0.0.1 is a loopback address"):
            http.request("GET", f"{base}/a.png", deadline_s=10, max_bytes=100,
                         policy=HostPolicy.of([]))


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/",
                                    "http://[::ffff:169.254.169.254]/", "http://10.0.0.1/",
                                    "http://0xa9fea9fe/", "file:///etc/passwd"])
def test_every_redirect_hop_is_vetted(target: str):
    with (serve({"/r": redirect(target), "/ok": body(b"x")}) as base,
          pytest.raises(HostRefusedError)):
        http.request("GET", f"{base}/r", deadline_s=10, max_bytes=100, policy=LOOPBACK,
                     max_redirects=5)


def test_redirects_within_the_policy_are_followed_and_bounded():
    with serve({"/r1": redirect("/r2"), "/r2": redirect("/img"), "/img": body(b"IMG"),
                "/loop": redirect("/loop")}) as base:
        response = http.request("GET", f"{base}/r1", deadline_s=10, max_bytes=100,
                                policy=LOOPBACK, max_redirects=5)
        assert response.body == b"IMG"
        from claimdiff.errors import TransportError

        with pytest.raises(TransportError, match=r"more than 3 redirects"):
            http.request("GET", f"{base}/loop", deadline_s=10, max_bytes=100, policy=LOOPBACK,
                         max_redirects=3)


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
def test_a_trickling_server_meets_the_deadline_of_the_whole_request(in_headers: bool):
    """One byte every 50 ms never trips a per-read timeout; the request deadline ends it."""
    with serve({"/slow": trickle(0.05, in_headers=in_headers)}) as base:
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError, match=r"timed out after 0.5 s"):
            http.request("GET", f"{base}/slow", deadline_s=0.5, max_bytes=10**10,
                         policy=LOOPBACK)
        assert time.monotonic() - started < 30  # it ended; without a deadline it never would


def test_byte_limit_by_header_and_by_body():
    with serve({"/big": body(b"x" * 5000)}) as base, pytest.raises(ResponseTooLargeError):
        http.request("GET", f"{base}/big", deadline_s=10, max_bytes=4999, policy=LOOPBACK)


# --- image fetches -------------------------------------------------------------------------------


def _config(**changes: object) -> ImageConfig:
    return ImageConfig(**{"allowed_schemes": ["file", "http", "https"], **changes})


def test_http_image_refused_by_default_then_allowed():
    image = png_bytes(__import__("PIL.Image", fromlist=["Image"]).new("RGB", (4, 4)))
    with serve({"/a.png": body(image)}) as base:
        with pytest.raises(ImageError, match=r"refused by the host policy.*images.allowed_hosts"):
            read_bytes(f"{base}/a.png", _config())
        assert read_bytes(f"{base}/a.png", _config(allowed_hosts=["127.0.0.1"])) == image
        with pytest.raises(ImageError, match=r"image not found \(HTTP 404\)"):
            read_bytes(f"{base}/missing.png", _config(allowed_hosts=["127.0.0.1"]))


def test_http_image_fetch_has_a_total_time_limit():
    with (serve({"/slow.png": trickle(0.05)}) as base,
          pytest.raises(ImageError, match=r"longer than images.fetch_timeout_s=0.3 s")):
        read_bytes(f"{base}/slow.png", _config(allowed_hosts=["127.0.0.1"], fetch_timeout_s=0.3))


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://metadata.google.internal/computeMetadata/v1/", "http://[fd00:ec2::254]/",
    "http://0x7f.1:6379/", "http://localhost/", "http://[::ffff:10.0.0.1]/a.png",
])
def test_metadata_and_internal_image_urls_are_refused(url: str):
    policy = HostPolicy.of([], resolver=lambda host, port: (
        ["169.254.169.254"] if host == "metadata.google.internal" else system_resolver(host, port)))
    with pytest.raises(ImageError, match=r"refused by the host policy"):
        read_bytes(url, _config(), policy)
