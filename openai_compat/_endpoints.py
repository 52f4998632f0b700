"""The lower layer of ``Client``: one short method per endpoint, each over the call pipeline.

``create_chat_completion()``, ``create_completion()`` and ``create_response()`` take a request
body in wire names and return the parsed JSON, or the parsed chunks (events) of a stream;
``post_json()`` does the same for any path. ``embed()``, ``models()``, ``probe()`` and
``submit_batch_job()`` read the other endpoints. The methods hold no state and no glue: the
client's parts (``_calls``, the pipeline in ``_pipeline.py``) send, record and tell.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Sequence, overload

from ._answers import first_choice, parse_completion, parse_object, reasoning_of, reply_text
from ._options import NOT_GIVEN, CallOptions, Timeout, check_deadline, check_timeout
from ._params import KNOWN_NAMES, build_body, check_messages, check_params
from ._retry import RetryPolicy, check_policy
from ._secrets import masked_headers
from ._settings import string_pairs

if TYPE_CHECKING:
    from ._batch_jobs import BatchJob
    from ._chat_stream import ChunkStream
    from ._connection import Connection
    from ._pipeline import Calls
    from ._probe import ProbeReport
    from ._responses import ResponseStream


class Endpoints:
    """The endpoint methods of ``Client``; use ``Client`` or a preset.

        >>> from openai_compat import Client
        >>> callable(Client("http://127.0.0.1:8080/v1").create_chat_completion)
        True
    """

    #: How ``thinking=`` reaches this kind of server: ``"reasoning_effort"``,
    #: ``"chat_template_kwargs"``, ``"reasoning"`` or ``"thinking"`` (None: no known switch).
    thinking_style: ClassVar[str | None] = None
    #: How many inputs ``embed()`` sends per request; larger lists are split.
    embed_batch_size: int = 128

    # What the client sets up (``_client.py``).
    _calls: Calls
    _connection: Connection
    model: str | None
    timeout: Timeout
    retry: RetryPolicy
    deadline: float | None
    stream_usage: bool

    @overload
    def create_chat_completion(
        self, *, stream: Literal[False] = False, timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> dict[str, Any]: ...

    @overload
    def create_chat_completion(
        self, *, stream: Literal[True], timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> ChunkStream: ...

    @overload
    def create_chat_completion(
        self, *, stream: bool, timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> dict[str, Any] | ChunkStream: ...

    def create_chat_completion(
        self,
        *,
        stream: bool = False,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **body: Any,
    ) -> dict[str, Any] | ChunkStream:
        """POST ``body`` to ``/chat/completions`` and return the parsed JSON, or the chunks.

        ``body`` is the request in wire names, sent as given (``model`` defaults to the
        client's). With ``stream=True`` the result iterates over parsed chunk dicts; pass the
        ones you kept to ``merge_chunks()`` for the complete response.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> done = client.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
            >>> done["object"], done["choices"][0]["message"]["role"]
            ('chat.completion', 'assistant')
        """
        if "messages" not in body:
            raise TypeError("create_chat_completion() needs messages=[...]")
        check_messages(body["messages"])
        options = self._options(timeout, max_retries, deadline)
        body = self._body("create_chat_completion", body.pop("model", None), {}, {}, body, options, checked=False)
        if stream:
            return self._chat_stream("/chat/completions", body, options)
        return self._answer_call("/chat/completions", body, options)

    @overload
    def create_completion(
        self, *, stream: Literal[False] = False, timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> dict[str, Any]: ...

    @overload
    def create_completion(
        self, *, stream: Literal[True], timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> ChunkStream: ...

    @overload
    def create_completion(
        self, *, stream: bool, timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> dict[str, Any] | ChunkStream: ...

    def create_completion(
        self,
        *,
        stream: bool = False,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **body: Any,
    ) -> dict[str, Any] | ChunkStream:
        """POST ``body`` to ``/completions`` and return the parsed JSON, or the chunks.

        It works like ``create_chat_completion()``, with ``prompt=`` in place of ``messages=``.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> done = client.create_completion(prompt="Once", max_tokens=5)
            >>> done["object"], done["choices"][0]["finish_reason"] in ("stop", "length")
            ('text_completion', True)
        """
        if "prompt" not in body:
            raise TypeError("create_completion() needs prompt=...")
        options = self._options(timeout, max_retries, deadline)
        body = self._body("create_completion", body.pop("model", None), {}, {}, body, options, checked=False)
        if stream:
            return self._chat_stream("/completions", body, options, chat=False)
        return self._answer_call("/completions", body, options)

    @overload
    def create_response(
        self, *, stream: Literal[False] = False, timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> dict[str, Any]: ...

    @overload
    def create_response(
        self, *, stream: Literal[True], timeout: Timeout = ..., max_retries: int | None = ...,
        deadline: float | None = ..., **body: Any
    ) -> ResponseStream: ...

    def create_response(
        self,
        *,
        stream: bool = False,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **body: Any,
    ) -> dict[str, Any] | ResponseStream:
        """POST ``body`` to ``/responses`` (the Responses API) and return the parsed response, or
        with ``stream=True`` an iterator of its events, each a dict with its ``type``.

        Stateless: ``store`` is sent only when you pass it. A failed response, or a stream that
        fails, ends incomplete, sends an ``error`` event or is cut off, raises a typed error.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> client.create_response(input="Hi", max_output_tokens=16)   # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            openai_compat._errors.NotFoundError: HTTP 404: ... this server may have no Responses API: ...
        """
        from ._responses import ResponseStream, output_reasoning

        if "input" not in body:
            raise TypeError("create_response() needs input=...")
        options = self._options(timeout, max_retries, deadline)
        body = self._body("create_response", body.pop("model", None), {}, {}, body, options, checked=False)
        if stream:
            return self._calls.stream("/responses", dict(body, stream=True), options, ResponseStream)
        return self._calls.call("POST", "/responses", body, options, parse_object, output_reasoning)

    def post_json(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
    ) -> dict[str, Any]:
        """POST ``body`` to ``path`` under the base URL and return the JSON object it answers.

        For endpoints the SDK has no method for; retries, timeouts, secrets and the event hook
        work as for every call. ``body`` is sent exactly as given; None sends no body at all
        (``/batches/{id}/cancel`` takes none).

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> answer = client.post_json("/chat/completions", {"model": "tiny", "max_tokens": 5,
            ...                           "messages": [{"role": "user", "content": "Hi"}]})
            >>> answer["object"]
            'chat.completion'
        """
        return self._calls.call("POST", _checked_path(path), body, self._options(timeout, max_retries, deadline),
                                parse_object)

    def get_json(self, path: str) -> dict[str, Any]:
        """GET ``path`` under the base URL and return the JSON object it answers.

            >>> from openai_compat import Client
            >>> Client("http://127.0.0.1:8080/v1").get_json("/models")["object"]
            'list'
        """
        return self._calls.call("GET", _checked_path(path), None, self._options(NOT_GIVEN, None, NOT_GIVEN),
                                parse_object)

    def get_bytes(self, path: str) -> bytes:
        """GET ``path`` under the base URL and return its body as it came (a file's content).

            >>> from openai_compat import Client
            >>> Client("http://127.0.0.1:8080/v1").get_bytes("/models")[:1]
            b'{'
        """
        kept: list[bytes] = []

        def keep(raw: bytes, request_id: str | None) -> dict[str, Any]:
            kept.append(raw)
            return {}

        self._calls.call("GET", _checked_path(path), None, self._options(NOT_GIVEN, None, NOT_GIVEN), keep)
        return kept[0]

    def upload_file(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        """Upload ``content`` to ``/files`` (multipart, as the OpenAI files API takes it).

        With a provider that keeps files (OpenAI, Groq, Together, ...):

            uploaded = client.upload_file(b'{"custom_id": "1", ...}\\n', "batch.jsonl", "batch")
            uploaded["id"]                                   # 'file-abc123'
        """
        return self._calls.call("POST", "/files", {"purpose": purpose}, self._options(NOT_GIVEN, None, NOT_GIVEN),
                                parse_object, files={"file": (filename, content, "application/jsonl")})

    def submit_batch_job(
        self,
        requests: Sequence[Any],
        *,
        endpoint: str = "/v1/chat/completions",
        completion_window: str = "24h",
        metadata: dict[str, str] | None = None,
        model: str | None = None,
        **params: Any,
    ) -> BatchJob:
        """Run ``requests`` as a provider batch job (``/files`` + ``/batches``): for large work
        that can wait hours, usually at half the price. Each request is a prompt (sent as a chat
        with ``params``) or a whole request body. The job's ``results()`` come in input order.
        (``batch()`` is the other kind: many calls at once, from this process.)

            >>> from openai_compat import BatchJob
            >>> callable(BatchJob.wait)
            True

        With a provider that runs batch jobs (OpenAI, Groq, Together, ...):

            job = client.submit_batch_job(["Translate 'cat'", "Translate 'dog'"], max_tokens=20)
            job.wait(progress=True)
            answers = job.results()     # response bodies, or errors in place
        """
        from ._batch_jobs import BatchJob, batch_lines, check_created

        lines = batch_lines(requests, endpoint, model if model is not None else self.model, params)
        uploaded = self.upload_file(lines, "batch.jsonl", "batch")
        body: dict[str, Any] = {"input_file_id": uploaded["id"], "endpoint": endpoint,
                                "completion_window": completion_window}
        if metadata:
            body["metadata"] = metadata
        return BatchJob(self, check_created(self.post_json("/batches", body)), len(requests))

    #: The name ``submit_batch_job()`` had first.
    submit_batch = submit_batch_job

    def models(self) -> list[dict[str, Any]]:
        """The models the server lists at ``/models``, each a dict of the server's own fields
        plus ``context_length``, read from whichever field the server uses (or None).

            >>> from openai_compat import Client
            >>> [model["id"] for model in Client("http://127.0.0.1:8080/v1").models()]
            ['tiny']
        """
        from ._probe import models_of

        return models_of(self.get_json("/models"))

    def probe(self, model: str | None = None) -> ProbeReport:
        """What this server really does with ``model``, each item probed with one tiny request.

        Blocking and streamed chat, ``[DONE]``, usage, ``stream_options``, ``n``, ``json_object``,
        ``json_schema``, tools, ``max_completion_tokens``, reasoning fields, ``/completions``,
        ``/embeddings``, ``/responses`` and the shape of an error body: at most 12 requests and
        about 100 generated tokens. Each item says ok / no / unknown / skipped, with its evidence.

            >>> from openai_compat import Client
            >>> report = Client("http://127.0.0.1:8080/v1").probe("tiny")
            >>> report.ok, report.result("n > 1")
            (True, 'no')
        """
        model = model if model is not None else self.model
        if not model:
            raise ValueError(f"no model to probe: pass probe(model=...) or {type(self).__name__}(model=...)")
        from ._probe import run_probe

        probing = self.with_options()  # type: ignore[attr-defined]
        probing._calls.adapt = None  # the probe reports what the server does, unadapted
        return run_probe(probing, model)

    def embed(
        self,
        texts: str | Sequence[str],
        *,
        model: str | None = None,
        batch_size: int | None = None,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
        **extra: Any,
    ) -> Any:
        """Embed one text (one vector back, a ``list[float]``) or a list of texts (vectors in
        input order, a ``list[list[float]]``).

        Lists longer than ``batch_size`` (default ``embed_batch_size``) go in several
        requests. Extra keywords (``dimensions``, ``encoding_format``, ...) go into each body.

        With an embedding model:

            client = Client("http://127.0.0.1:8080/v1", model="nomic-embed-text")
            vector = client.embed("hello")                    # [0.013, -0.027, ...]
            vectors = client.embed(["hello", "world"])        # two vectors, in order
        """
        from ._embeddings import vectors_of

        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise TypeError(f"embed(): input {i} must be a str, got {type(item).__name__}")
        size = batch_size if batch_size is not None else self.embed_batch_size
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {size!r}")
        options = self._options(timeout, max_retries, deadline)
        vectors: list[list[float]] = []
        for start in range(0, len(items), size):
            part = items[start : start + size]

            def checked(raw: bytes, request_id: str | None, expected: int = len(part)) -> dict[str, Any]:
                answer = parse_object(raw, request_id)
                vectors.extend(vectors_of(answer, expected, request_id))
                return answer

            body = self._body("embed", model, {"input": part}, {}, extra, options)
            self._calls.call("POST", "/embeddings", body, options, checked)
        return vectors[0] if single else vectors

    # -- what every endpoint method shares ------------------------------------------------------

    def _options(self, timeout: Timeout, max_retries: int | None, deadline: float | None) -> CallOptions:
        """A call's timeout, retries and deadline: its own where given (checked), else the
        client's. The deadline starts now."""
        retry = self.retry if max_retries is None else check_policy(self.retry, max_retries)
        return CallOptions(self.timeout if timeout is NOT_GIVEN else check_timeout(timeout), retry,
                       self.deadline if deadline is NOT_GIVEN else check_deadline(deadline))

    def _body(self, call: str, model: str | None, base: dict[str, Any], params: dict[str, Any],
              extra: dict[str, Any], options: CallOptions, *, checked: bool = True) -> dict[str, Any]:
        """The body of ``call``, its parameters checked (``checked=False`` sends them as given).

        ``thinking=True/False/"low"...`` becomes the preset's own field; a dict is sent as it is
        (it is DeepSeek's own ``thinking`` field). ``extra_headers`` and ``extra_query`` go to
        ``options``; ``extra_body`` is merged into the body last, its names as they are."""
        extra_body = None
        if "extra_headers" in extra or "extra_query" in extra or "extra_body" in extra:
            extra = dict(extra)
            headers = string_pairs(call, "extra_headers", extra.pop("extra_headers", None))
            options.headers = masked_headers(call, headers, self._connection.secrets) or None
            options.query = string_pairs(call, "extra_query", extra.pop("extra_query", None)) or None
            extra_body = extra.pop("extra_body", None)
            if extra_body is not None and not isinstance(extra_body, dict):
                raise TypeError(f"{call}: extra_body must be a dict, got {type(extra_body).__name__}")
        if checked:
            check_params(call, params, extra, KNOWN_NAMES)
            thinking = extra.get("thinking")
            if isinstance(thinking, (bool, str)):
                from ._reasoning import thinking_params

                extra = {k: v for k, v in extra.items() if k != "thinking"}
                for key, value in thinking_params(self.thinking_style, thinking, type(self).__name__).items():
                    if key in extra:  # every thinking field is one split_params() leaves in extra
                        raise ValueError(f"{call}(): thinking= sets {key}, which you also passed: pass one of them")
                    extra[key] = value
        body = build_body(model if model is not None else self.model, type(self).__name__, base, params, extra)
        if extra_body:
            body.update(extra_body)
        return body

    def _answer_call(self, path: str, body: dict[str, Any], options: CallOptions) -> dict[str, Any]:
        """A blocking chat or completion: the answer, its choices checked."""
        return self._calls.call("POST", path, body, options, parse_completion, _first_reasoning)

    def _reply(self, choice: dict[str, Any], answer: dict[str, Any], *, chat: bool = True, keep_think: bool) -> str:
        """The text of ``choice`` in the blocking ``answer`` this thread just got."""
        last = self._calls.last
        return reply_text(choice, chat=chat, keep_think=keep_think, usage=answer.get("usage"),
                          request_id=last.request_id if last is not None else None)

    def _chat_stream(self, path: str, body: dict[str, Any], options: CallOptions, *, chat: bool = True,
                     keep_think: bool = False) -> ChunkStream:
        from ._chat_stream import ChunkStream

        body["stream"] = True
        if self.stream_usage and "stream_options" not in body:
            body["stream_options"] = {"include_usage": True}
        n = body.get("n")
        return self._calls.stream(path, body, options, partial(
            ChunkStream, expected_choices=n if isinstance(n, int) else 1, chat=chat, keep_think=keep_think))


def _first_reasoning(answer: dict[str, Any]) -> str:
    return reasoning_of(first_choice(answer))


def _checked_path(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"the path must start with '/', got {path!r}")
    return path
