"""The connection to one server: the session and its pool, the headers and key, one attempt.

``Connection.send()`` makes one HTTP request and returns the response with its body read (a
stream's is left unread), or raises ``APIConnectionError`` / ``APITimeoutError``. It knows
nothing of retries, records or events: the call pipeline (``_pipeline.py``) does.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.utils import get_netrc_auth
from urllib3.exceptions import ReadTimeoutError

from ._errors import APIConnectionError, APITimeoutError
from ._secrets import KeepAuthorization, MaskedHeaders, Secrets, checked_key, masked_headers

if TYPE_CHECKING:
    from ._options import Timeout

_OBJECT_REPR = r"<[\w.]+ object at 0x[0-9a-fA-F]+>: "
#: Connections requests keeps per host unless told otherwise.
DEFAULT_POOL_SIZE = 10


class Connection:
    """Sends requests under ``base_url`` with ``headers``, on one session (ours, or the caller's).

    Our own session reads the proxy variables, the CA bundle and ``~/.netrc`` once, when it is
    made: requests reads them on every request, which costs more than the rest of a call on
    loopback. In a forked child the parent's pooled connections are never touched.
    """

    def __init__(self, base_url: str, headers: dict[str, str], secrets: Secrets, session: requests.Session | None,
                 recorder: BaseAdapter | None = None, *, query: Mapping[str, str] | None = None,
                 key_provider: Callable[[], str] | None = None,
                 key_header: tuple[str, str] = ("Authorization", "Bearer "), verify: bool | str | None = None,
                 cert: str | tuple[str, str] | None = None, trust: str | None = None) -> None:
        self.base_url = base_url
        self.secrets = secrets
        #: Query parameters sent with every request (Azure's ``api-version``).
        self.query = dict(query or {})
        #: A function that returns the key, called for each attempt (short-lived tokens), and
        #: the header it goes in, with its prefix.
        self.key_provider = key_provider
        self.key_header = key_header
        #: Where the key came from ("api_key=", "the GROQ_API_KEY variable", ...), for a 401's message.
        self.key_source: str | None = None
        #: TLS: a CA bundle path or False (None: the environment's), a client certificate, and
        #: ``trust="system"``: the operating system's trust store (with ``truststore``).
        self.verify = verify
        self.cert = cert
        self.trust = trust
        self._recorder = recorder  # a cassette's adapter: every call goes through it
        self.headers = MaskedHeaders((k, str(v)) for k, v in headers.items())
        self._stream_headers = MaskedHeaders(self.headers, Accept="text/event-stream")
        has_authorization = key_provider is not None or any(k.lower() == "authorization" for k in headers)
        self._auth = KeepAuthorization() if has_authorization else None
        self.owns_session = session is None
        self.borrowed = False  # a twin's (with_options()): the pool is another's to close
        self._pool_size = DEFAULT_POOL_SIZE
        if session is None:
            session = self._new_session()
        elif recorder is not None:
            session.mount(base_url, recorder)
        self.session = session
        self._forks_seen = _forks
        self._answers = 0  # answers received: until one came, no kept-alive connection can be reused

    def __repr__(self) -> str:
        return f"Connection(base_url={self.base_url!r})"

    def __getstate__(self) -> dict[str, Any]:
        # A session of our own is not shipped (its sockets belong to this process); it is made
        # anew on the other side. A caller's session goes as requests pickles it.
        state = dict(self.__dict__)
        if self.owns_session:
            del state["session"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._forks_seen = _forks  # another process: its own fork count
        if self.owns_session:
            self.session = self._new_session()

    def _new_session(self) -> requests.Session:
        session = requests.Session()
        environment = environment_settings(self.base_url)
        session.proxies.update(environment["proxies"])
        session.verify = environment["verify"]
        if self._auth is None:  # no key of ours: requests' own rules for ~/.netrc apply
            session.auth = get_netrc_auth(self.base_url)
        session.trust_env = False
        if self._recorder is not None:
            session.mount(self.base_url, self._recorder)
        elif self._pool_size != DEFAULT_POOL_SIZE or self.trust is not None:
            session.mount(self.base_url, self._adapter(self._pool_size))
        return session

    def _adapter(self, pool_size: int) -> HTTPAdapter:
        if self.trust is None:
            return HTTPAdapter(pool_maxsize=pool_size)
        from ._tls import SystemTrustAdapter

        return SystemTrustAdapter(pool_maxsize=pool_size)

    def _check_fork(self) -> None:
        """In a forked child, never touch the parent's pooled connections: two processes
        reading one socket interleave their answers, or hang."""
        if _forks == self._forks_seen:
            return  # the usual case: no fork since the last send
        self._forks_seen = _forks
        if self.owns_session:
            self.session = self._new_session()  # the parent's sockets are left to the parent
        else:
            for adapter in self.session.adapters.values():
                adapter.close()  # empties the pools; the adapter and its settings stay

    def settings_for(self, url: str) -> dict[str, Any]:
        """The proxies and TLS settings for a request to another host (a media download): the
        client's ``verify`` and ``cert``; for our own session the environment's proxies and CA
        bundle for ``url``, read now."""
        tls = {name: value for name, value in (("verify", self.verify), ("cert", self.cert)) if value is not None}
        if not self.owns_session:
            return tls
        environment = environment_settings(url)
        proxies: dict[str, Any] = dict.fromkeys(self.session.proxies)  # None drops the server's own
        proxies.update(environment["proxies"])
        return {"proxies": proxies, "verify": environment["verify"], **tls}

    def ensure_pool(self, size: int) -> None:
        """Keep at least ``size`` connections to the server (our own session only; a caller's
        session keeps the adapters the caller gave it)."""
        if self.owns_session and size > self._pool_size and self._recorder is None:
            self._pool_size = size
            self.session.mount(self.base_url, self._adapter(size))

    def close(self) -> None:
        """Close the connections, unless the session was the caller's (then it stays open)."""
        if self.owns_session and not self.borrowed:
            self.session.close()

    def twin(self, owner: str, headers: Mapping[str, str] | None = None) -> Connection:
        """A connection on this one's session and pool with ``headers`` added, for a derived
        client: closing it leaves the pool open."""
        twin = object.__new__(Connection)
        twin.__dict__.update(self.__dict__)
        twin.borrowed = True
        if headers:
            added = {k: str(v) for k, v in masked_headers(owner, headers, self.secrets).items()}
            twin.headers = MaskedHeaders(self.headers, **added)
            twin._stream_headers = MaskedHeaders(self._stream_headers, **added)
        return twin

    def send(self, method: str, path: str, body: dict[str, Any] | None, *, stream: bool, timeout: Timeout,
             files: dict[str, Any] | None = None, headers: Mapping[str, str] | None = None,
             query: Mapping[str, str] | None = None) -> tuple[requests.Response, bytes]:
        """One attempt: ``body`` as JSON (or as form fields beside ``files``), and the response
        with its body back (a stream's body is left unread: b""). ``headers`` and ``query`` are
        this call's own, beside the client's.

        A non-streamed body, and the body of any answer that is not a 2xx, is read here: a
        connection that breaks half-way through it fails the attempt like one that broke before
        the headers.
        """
        self._check_fork()
        url = self.base_url + path
        reusable = self._answers > 0
        sent_headers = self._stream_headers if stream else self.headers
        if headers or self.key_provider is not None:
            sent_headers = MaskedHeaders(sent_headers, **{k: str(v) for k, v in (headers or {}).items()})
            if self.key_provider is not None:
                name, prefix = self.key_header
                key = checked_key("api_key()", self.key_provider(), self.secrets)
                sent_headers[name] = prefix + key  # a plain str: requests 2.28 refuses a str subclass
        params = {**self.query, **query} if query else self.query
        try:
            response = self.session.request(
                method, url, params=params or None, json=body if files is None else None,
                data=body if files is not None else None, files=files, headers=sent_headers, auth=self._auth,
                timeout=timeout, stream=True, allow_redirects=False, verify=self.verify, cert=self.cert,
            )
        except requests.exceptions.InvalidJSONError as exc:
            raise TypeError(f"the request body cannot be sent as JSON: {exc}") from None
        except requests.exceptions.InvalidHeader:
            # requests' message about a bad header shows the value, which may be a key.
            error = APIConnectionError("a header value is invalid (values are not shown, they may be secret)")
            error.retryable = False
            raise error from None
        except requests.RequestException as exc:
            raise self._failure(exc, url, reusable) from exc
        self._answers += 1
        if stream and response.ok:
            return response, b""
        try:
            return response, whole_body(response)
        except requests.RequestException as exc:
            raise self._failure(exc, url, reusable=False, answered=True) from exc

    def _failure(self, exc: requests.RequestException, url: str, reusable: bool,
                 answered: bool = False) -> APIConnectionError:
        reason = exc.args[0] if exc.args else exc
        reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the real one
        text = self.secrets.redact(_sentence(reason))
        if isinstance(exc, requests.Timeout) or is_timeout(exc):
            return APITimeoutError(f"timed out waiting for {url}: {text}")
        if isinstance(exc, requests.exceptions.SSLError):
            from ._tls import FIXES

            error = APIConnectionError(f"could not verify the TLS certificate of {url}: {text}. If a proxy or a"
                                       f" private CA signs it: {FIXES}")
            error.retryable = False  # the same certificate will fail the same way
            return error
        if answered:
            return APIConnectionError(f"the connection broke while reading the answer from {url}: {text}")
        error = APIConnectionError(f"could not reach {url}: {text}")
        error.unanswered = reusable and closed_before_answer(exc)
        return error


def _sentence(reason: object) -> str:
    """``reason`` as one sentence. urllib3 gives some errors as (message, the error under it),
    which ``str()`` shows as a tuple: ``ProtocolError("Connection broken: IncompleteRead(...)",
    the IncompleteRead)``, ``ProxyError("Unable to connect to proxy", the refusal)``."""
    args: tuple[Any, ...] = getattr(reason, "args", ())
    if len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], BaseException):
        message, under = args
        return message if repr(under) in message else f"{message.rstrip('.')}: {_sentence(under)}"
    # Without the connection urllib3 names first: "HTTPConnectionPool(host=..., port=...): " or,
    # on 1.26, its object's repr, "<urllib3.connection.HTTPConnection object at 0x7f...>: ".
    return re.sub(_OBJECT_REPR, "", str(reason).split("): ", 1)[-1])


def closed_before_answer(exc: BaseException) -> bool:
    """Whether the server closed or reset the connection before a byte of its answer came (a
    kept-alive connection the server closed just as it was reused): sending again on a new
    connection is safe, as the server read nothing it answered."""
    # An OSError with ECONNRESET or EPIPE is always one of these two (PEP 3151).
    return any(isinstance(seen, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError))
               for seen in _chain(exc))


def whole_body(response: requests.Response) -> bytes:
    """The whole body of ``response``. One cut short of its ``Content-Length`` raises requests'
    ``ConnectionError`` saying how much came: urllib3 2 checks the length, urllib3 1.26 hands
    over what came and the length is checked here."""
    try:
        raw = response.content
    except requests.RequestException as exc:
        cut = _incomplete_read(exc)
        if cut is None:
            raise
        came, missing = cut
        raise requests.ConnectionError(f"the connection closed after {came} of the answer's {came + missing}"
                                       " bytes") from exc
    declared = response.headers.get("content-length", "")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if declared.isdigit() and encoding == "identity" and len(raw) < int(declared):
        raise requests.ConnectionError(f"the connection closed after {len(raw)} of the answer's {declared} bytes")
    return raw


def _incomplete_read(exc: BaseException) -> tuple[int, int] | None:
    """The bytes that came and those still missing, from urllib3 2's ``IncompleteRead`` among
    the errors ``exc`` holds or was raised from."""
    # http.client's own has the bytes that came, urllib3's their count.
    for seen in _chain(exc):
        if isinstance(seen, http.client.IncompleteRead) and isinstance(seen.partial, int) and seen.expected:
            return seen.partial, seen.expected
    return None


def is_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception it was raised from is a timeout (requests reports a
    read timeout during the body as a ``ConnectionError``)."""
    return any(isinstance(seen, (socket.timeout, ReadTimeoutError)) for seen in _chain(exc))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and each exception it was raised from or during, in turn."""
    seen: BaseException | None = exc
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def environment_settings(url: str) -> dict[str, Any]:
    """What requests takes from the environment for a request to ``url``: ``proxies`` (minding
    ``NO_PROXY``) and ``verify`` (``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE``, else True)."""
    settings = requests.Session().merge_environment_settings(url, {}, None, None, None)
    return {"proxies": settings["proxies"], "verify": settings["verify"]}


#: How many times this process became a fork's child. Windows, the one platform without
#: ``os.register_at_fork``, cannot fork.
_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_count_fork)
