"""What the link transport's connection is made of, from a ``GatewayConfig``.

``link_options``: CONNECT's content (``feeds.link.LinkOptions``); ``ssl_context``: the TLS
context. ``mqtt_options`` is what ``feeds.security.client_options`` makes for either
transport (``username``, ``password``, ``tls_params``), plus ``tls_context``,
``keepalive``, ``timeout`` (CONNACK) and ``max_packet_size``; anything else (an aiomqtt
argument the link has no use for) is refused by name rather than ignored.
"""
from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from feeds.config import GatewayConfig
from feeds.link import LinkOptions
from feeds.outbox import Publish

__all__ = ["SUPPORTED_OPTIONS", "link_options", "ssl_context"]

SUPPORTED_OPTIONS = frozenset({"username", "password", "tls_params", "tls_context",
                               "keepalive", "timeout", "max_packet_size"})


def ssl_context(options: Mapping[str, Any]) -> ssl.SSLContext | None:
    """The client TLS context of ``mqtt_options``: ``tls_context`` as given, or one built
    from ``tls_params`` (aiomqtt.TLSParameters) as paho would, always checking the host
    name unless certificates are not checked at all; None without TLS."""
    if options.get("tls_context") is not None:
        return options["tls_context"]
    tp = options.get("tls_params")
    if tp is None:
        return None
    ctx = ssl.SSLContext(getattr(tp, "tls_version", None) or ssl.PROTOCOL_TLS_CLIENT)
    reqs = getattr(tp, "cert_reqs", None)
    reqs = ssl.CERT_REQUIRED if reqs is None else reqs
    if getattr(tp, "certfile", None):
        ctx.load_cert_chain(tp.certfile, tp.keyfile, getattr(tp, "keyfile_password", None))
    if reqs == ssl.CERT_NONE:
        ctx.check_hostname = False
    ctx.verify_mode = reqs
    if reqs != ssl.CERT_NONE:
        ctx.check_hostname = True
    if getattr(tp, "ca_certs", None):
        ctx.load_verify_locations(tp.ca_certs)
    else:
        ctx.load_default_certs()
    if getattr(tp, "ciphers", None):
        ctx.set_ciphers(tp.ciphers)
    return ctx


def link_options(config: GatewayConfig, will: Publish | None) -> LinkOptions:
    """CONNECT's content from a GatewayConfig; unknown ``mqtt_options`` are refused."""
    opts = config.mqtt_options
    unknown = set(opts) - SUPPORTED_OPTIONS
    if unknown:
        raise ValueError(f"mqtt_options {sorted(unknown)} are not supported by the link "
                         f"transport (it takes {sorted(SUPPORTED_OPTIONS)})")
    return LinkOptions(config.client_id, opts.get("username"), opts.get("password"),
                       int(opts.get("keepalive", 60)), config.session_expiry, will,
                       opts.get("max_packet_size"), float(opts.get("timeout") or 10.0))
