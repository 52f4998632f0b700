"""TLS beyond requests' defaults: the operating system's trust store (``trust="system"``), and
what to say when a certificate is not trusted."""

from __future__ import annotations

import importlib
import ssl
from typing import Any

from requests.adapters import HTTPAdapter

#: The fixes an untrusted certificate's error names.
FIXES = ("set REQUESTS_CA_BUNDLE to a CA bundle that holds your organisation's CA, pass verify='/path/to/ca.pem',"
         " or trust='system' to use the operating system's trust store (pip install truststore)")


def system_context() -> ssl.SSLContext:
    """An SSL context that trusts what the operating system trusts (``truststore``)."""
    try:
        truststore = importlib.import_module("truststore")  # optional, never a dependency
    except ImportError:
        raise ValueError("trust='system' needs the truststore package (Python 3.10+): pip install truststore") from None
    context: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return context


class SystemTrustAdapter(HTTPAdapter):
    """An adapter whose connections verify certificates against the operating system's store."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = system_context()
        super().init_poolmanager(*args, **kwargs)
