"""The lower layer of ``Client``: one method per endpoint, and the glue to sending and reading.

``create_chat_completion()``, ``create_completion()`` and ``create_response()`` take a request
body in wire names and return the parsed JSON, or the parsed chunks (events) of a stream;
``post_json()`` does the same for any path. ``embed()``, ``models()`` and ``probe()`` read the
other endpoints. ``Client`` (``_client.py``) builds its front door on ``_call()`` and
``_stream()`` here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal, Sequence, overload

from ._base_client import BaseClient
from ._chunks import parse_completion, parse_object
from ._options import NOT_GIVEN, CallOptions, Timeout
from ._params import check_messages
from ._reasoning import message_reasoning, split_think
from ._sse import ChunkStream
from ._transport import Sent

if TYPE_CHECKING:  # imported where used: importing the package need not load them
    from ._batch_jobs import BatchJob
    from ._probe import ProbeReport
    from ._responses import ResponseStream


class EndpointsClient(BaseClient):
    """The lower layer of ``Client``, one method per endpoint; use ``Client`` or a preset.

        >>> from openai_compat import Client
        >>> isinstance(Client("http://127.0.0.1:8080/v1"), EndpointsClient)
        True
    """

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
        return self._create("/chat/completions", body, stream, self._call_options(timeout, max_retries, deadline))

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
        return self._create("/completions", body, stream, self._call_options(timeout, max_retries, deadline))

    def post_json(
        self,
        path: str,
        body: dict[str, Any],
        *,
        timeout: Timeout = NOT_GIVEN,
        max_retries: int | None = None,
        deadline: float | None = NOT_GIVEN,
    ) -> dict[str, Any]:
        """POST ``body`` to ``path`` under the base URL and return the JSON object it answers.

        For endpoints the SDK has no method for; retries, timeouts, secrets and the event hook
        work as for every call. ``body`` is sent exactly as given.

            >>> from openai_compat import Client
            >>> client = Client("http://127.0.0.1:8080/v1", model="tiny")
            >>> answer = client.post_json("/chat/completions", {"model": "tiny", "max_tokens": 5,
            ...                           "messages": [{"role": "user", "content": "Hi"}]})
            >>> answer["object"]
            'chat.completion'
        """
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"post_json(): path must start with '/', got {path!r}")
        sent = self._transport.send(path, body, self._call_options(timeout, max_retries, deadline), stream=False)
        self._transport.emit_answer(path, sent)
        return parse_object(sent.raw, sent.request_id)

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
        from ._responses import output_reasoning

        if "input" not in body:
            raise TypeError("create_response() needs input=...")
        body = self._body("", body.pop("model", None), {}, {}, body)
        options = self._call_options(timeout, max_retries, deadline)
        start = time.monotonic()
        if stream:
            return self._response_stream(dict(body, stream=True), options, start)
        sent = self._transport.send("/responses", body, options, stream=False)
        result = parse_object(sent.raw, sent.request_id)
        record = self._new_record("/responses", sent)
        record.finish(result, time.monotonic() - start)
        record.reasoning = lambda: output_reasoning(result)
        self.usage.add(record.usage)
        self._transport.emit_answer("/responses", sent, result.get("usage"))
        return result

    def _response_stream(self, body: dict[str, Any], options: CallOptions, start: float) -> ResponseStream:
        from ._responses import ResponseStream

        sent = self._transport.send("/responses", body, options, stream=True)
        self._transport.emit_answer("/responses", sent)
        record = self._new_record("/responses", sent)
        totals, transport = self.usage, self._transport

        def on_end(stream: ResponseStream) -> None:
            record.finish(stream.final or {}, time.monotonic() - start)
            record.partial = not stream.complete
            totals.add(record.usage)
            if stream.complete:
                usage = (stream.final or {}).get("usage")
                transport.emit("stream_end", "/responses", sent.attempt, sent.response.status_code,
                               record.elapsed, sent.request_id, usage)

        events = ResponseStream(sent.response, request_id=sent.request_id, on_end=on_end,
                                deadline_at=None if options.deadline is None else start + options.deadline)
        events.record = record
        return events

    def get_json(self, path: str) -> dict[str, Any]:
        """GET ``path`` under the base URL and return the JSON object it answers."""
        sent = self._get(path)
        return parse_object(sent.raw, sent.request_id)

    def get_bytes(self, path: str) -> bytes:
        """GET ``path`` under the base URL and return its body as it came (a file's content)."""
        return self._get(path).raw

    def _get(self, path: str) -> Sent:
        sent = self._transport.send(path, None, self._call_options(NOT_GIVEN, None, NOT_GIVEN), stream=False,
                                    method="GET")
        self._transport.emit_answer(path, sent, method="GET")
        return sent

    def upload_file(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        """Upload ``content`` to ``/files`` (multipart, as the OpenAI files API takes it)."""
        sent = self._transport.send("/files", {"purpose": purpose}, self._call_options(NOT_GIVEN, None, NOT_GIVEN),
                                    stream=False, files={"file": (filename, content, "application/jsonl")})
        self._transport.emit_answer("/files", sent)
        return parse_object(sent.raw, sent.request_id)

    def submit_batch(
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

            >>> from openai_compat import BatchJob
            >>> callable(BatchJob.wait)
            True

        With a provider that runs batch jobs (OpenAI, Groq, Together, ...):

            job = client.submit_batch(["Translate 'cat'", "Translate 'dog'"], max_tokens=20)
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

        return run_probe(self, model)

    def _create(
        self, path: str, body: dict[str, Any], stream: bool, options: CallOptions
    ) -> dict[str, Any] | ChunkStream:
        body = self._body("", body.pop("model", None), {}, {}, body)
        if stream:
            return self._stream(path, body, options)
        return self._call(path, body, options)

    #: How many inputs ``embed()`` sends per request; larger lists are split.
    embed_batch_size: int = 128

    @overload
    def embed(self, texts: str, *, model: str | None = None, **params: Any) -> list[float]: ...

    @overload
    def embed(self, texts: Sequence[str], *, model: str | None = None, **params: Any) -> list[list[float]]: ...

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
    ) -> list[float] | list[list[float]]:
        """Embed one text (one vector back) or a list of texts (vectors in input order).

        Lists longer than ``batch_size`` (default ``embed_batch_size``) go in several
        requests. Extra keywords (``dimensions``, ``encoding_format``, ...) go into each body.

        With an embedding model:

            client = Client("http://127.0.0.1:8080/v1", model="nomic-embed-text")
            vector = client.embed("hello")                    # [0.013, -0.027, ...]
            vectors = client.embed(["hello", "world"])        # two vectors, in order
        """
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise TypeError(f"embed(): input {i} must be a str, got {type(item).__name__}")
        size = batch_size if batch_size is not None else self.embed_batch_size
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"batch_size must be a whole number >= 1, got {size!r}")
        options = self._call_options(timeout, max_retries, deadline)
        from ._embeddings import vectors_of

        vectors: list[list[float]] = []
        for start in range(0, len(items), size):
            part = items[start : start + size]
            body = self._body("embed", model, {"input": part}, {}, extra)
            sent = self._transport.send("/embeddings", body, options, stream=False)
            vectors += vectors_of(parse_object(sent.raw, sent.request_id), len(part), sent.request_id)
            self._transport.emit_answer("/embeddings", sent)
        return vectors[0] if single else vectors

    def _call(self, path: str, body: dict[str, Any], options: CallOptions) -> dict[str, Any]:
        start = time.monotonic()
        sent = self._transport.send(path, body, options, stream=False)
        result = parse_completion(sent.raw, sent.request_id)
        record = self._new_record(path, sent)
        record.finish(result, time.monotonic() - start)
        choice = result["choices"][0]
        message = choice.get("message")
        if isinstance(message, dict):
            record.reasoning = lambda: message_reasoning(message)
        elif isinstance(choice.get("text"), str):
            record.reasoning = lambda: split_think(choice["text"])[0]
        self.usage.add(record.usage)
        self._transport.emit_answer(path, sent, result.get("usage"))
        return result

    def _stream(self, path: str, body: dict[str, Any], options: CallOptions) -> ChunkStream:
        body["stream"] = True
        if self.stream_usage and "stream_options" not in body:
            body["stream_options"] = {"include_usage": True}
        start = time.monotonic()
        transport = self._transport
        sent = transport.send(path, body, options, stream=True)
        status = sent.response.status_code
        transport.emit_answer(path, sent)

        record = self._new_record(path, sent)
        totals = self.usage

        def on_end(stream: ChunkStream) -> None:
            elapsed = time.monotonic() - start
            record.finish({"model": stream.model, "usage": stream.usage, "choices": [
                {"index": i, "finish_reason": r} for i, r in stream.finish_reasons.items()]}, elapsed)
            if stream.first_piece_at is not None:
                record.time_to_first_piece = stream.first_piece_at - start
            record.partial = not stream.complete
            totals.add(record.usage)
            if stream.complete:
                transport.emit("stream_end", path, sent.attempt, status, elapsed, sent.request_id, stream.usage)

        chunks = ChunkStream(
            sent.response,
            expected_choices=body["n"] if isinstance(body.get("n"), int) else 1,
            deadline_at=None if options.deadline is None else start + options.deadline,
            request_id=sent.request_id,
            on_end=on_end,
        )
        chunks.record = record
        return chunks
