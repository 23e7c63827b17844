"""TLS client contexts: verification on by default, a custom CA bundle, a caller's SSLContext, or none.

Contexts are built once per client; building one loads the CA store, which is too slow to do per connection.
"""

from __future__ import annotations

import os
import ssl

from surge.errors import ConfigError

__all__ = ["VerifyTypes", "make_ssl_context"]

VerifyTypes = bool | str | ssl.SSLContext


def make_ssl_context(verify: VerifyTypes) -> ssl.SSLContext:
    """The client context for ``verify``: True = system CAs, a path = that CA file or directory,
    an SSLContext = used as given, False = no certificate or host name checks."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is True:
        ctx = ssl.create_default_context()
    elif verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        try:
            if os.path.isdir(verify):
                ctx = ssl.create_default_context(capath=verify)
            else:
                ctx = ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load CA certificates from {verify}: {exc}") from None
    # surge speaks HTTP/1.1 only; saying so stops servers that prefer h2 from choosing it.
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
