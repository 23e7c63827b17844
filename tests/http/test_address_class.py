"""The address classes the redirect guard and ``deny_private`` share: a pure function, tested case by case."""

from __future__ import annotations

import pytest

from surge.errors import BlockedAddress
from surge.http import address_class, deny_private
from surge.http.resolver import literal_address, public_only

# -- the classes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ip", "cls"), [
    # public
    ("1.2.3.4", "public"),
    ("8.8.8.8", "public"),
    ("93.184.216.34", "public"),
    ("2606:4700::1", "public"),
    ("2001:4860:4860::8888", "public"),
    ("::ffff:8.8.8.8", "public"),  # mapped: the IPv4 address's class
    ("64:ff9b::808:808", "public"),  # NAT64 to a public address
    ("2002:808:808::1", "public"),  # 6to4 of a public address
    # loopback
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:7f00:1", "loopback"),
    ("0:0:0:0:0:ffff:7f00:1", "loopback"),
    ("64:ff9b::7f00:1", "loopback"),
    ("2002:7f00:1::", "loopback"),
    ("::127.0.0.1", "loopback"),  # deprecated IPv4-compatible form
    # private (RFC 1918), and NAT64's local-use prefix
    ("10.0.0.1", "private"),
    ("10.255.255.255", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:192.168.0.1", "private"),
    ("2002:c0a8:101::", "private"),
    ("64:ff9b:1::a00:1", "private"),
    # shared address space (carrier-grade NAT)
    ("100.64.0.1", "shared"),
    ("100.127.255.254", "shared"),
    ("::ffff:100.64.0.1", "shared"),
    # link-local: where cloud metadata services answer
    ("169.254.169.254", "link-local"),
    ("169.254.0.1", "link-local"),
    ("::ffff:169.254.169.254", "link-local"),
    ("64:ff9b::a9fe:a9fe", "link-local"),
    ("2002:a9fe:a9fe::", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%lo", "link-local"),
    ("febf::1", "link-local"),
    # unique-local
    ("fc00::1", "unique-local"),
    ("fd00:ec2::254", "unique-local"),  # the IPv6 metadata address of one cloud
    # unspecified
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("::ffff:0.0.0.0", "unspecified"),
    # multicast
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    # everything else that is not global unicast
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
    ("192.0.0.8", "reserved"),
    ("192.0.2.1", "reserved"),
    ("198.18.0.1", "reserved"),
    ("198.51.100.1", "reserved"),
    ("203.0.113.1", "reserved"),
    ("2001:db8::1", "reserved"),
    ("3fff::1", "reserved"),
    ("2001::1", "reserved"),  # Teredo
    ("100::1", "reserved"),  # discard-only
    ("fec0::1", "reserved"),  # deprecated site-local
    ("5f00::1", "reserved"),  # outside 2000::/3
    ("::8.8.8.8", "reserved"),  # IPv4-compatible: deprecated, never public
    ("not an address", "reserved"),
    ("", "reserved"),
])
def test_address_class(ip: str, cls: str) -> None:
    assert address_class(ip) == cls


def test_deny_private_is_the_same_classification() -> None:
    assert deny_private("8.8.8.8") and deny_private("2606:4700::1") and deny_private("::ffff:8.8.8.8")
    assert not deny_private("::ffff:127.0.0.1") and not deny_private("::ffff:7f00:1")
    assert not deny_private("64:ff9b::a9fe:a9fe") and not deny_private("100.64.0.1")
    assert not deny_private("10.0.0.1") and not deny_private("::1") and not deny_private("224.0.0.1")


@pytest.mark.parametrize(("host", "ip"), [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),  # decimal
    ("0x7f.1", "127.0.0.1"),  # hex, short form
    ("0x7f000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),  # octal
    ("127.1", "127.0.0.1"),
    ("3232235777", "192.168.1.1"),
    ("::ffff:127.0.0.1", "::ffff:7f00:1"),
    ("::1", "::1"),
    ("example.com", None),
    ("internal.test", None),
    ("1e100.net", None),
    ("", None),
])
def test_literal_address(host: str, ip: str | None) -> None:
    assert literal_address(host) == ip


def test_public_only_keeps_the_public_addresses_or_refuses() -> None:
    assert public_only([(2, "127.0.0.1"), (2, "5.6.7.8")], "mixed.test") == [(2, "5.6.7.8")]
    with pytest.raises(BlockedAddress, match=r"169\.254\.169\.254 \(link-local\)") as info:
        public_only([(2, "169.254.169.254"), (10, "fe80::1")], "metadata.test")
    assert info.value.kind == "blocked"
