"""Embeddings: the vectors in an ``/embeddings`` answer, in input order, checked."""

from __future__ import annotations

import json
from typing import Any

from ._error_bodies import shorten
from ._errors import APIResponseError


def vectors_of(body: dict[str, Any], expected: int, request_id: str | None) -> list[list[float]]:
    data = body.get("data")
    if not isinstance(data, list) or len(data) != expected:
        got = len(data) if isinstance(data, list) else "no"
        raise APIResponseError(f"asked for {expected} embeddings, got {got}", body=body, request_id=request_id)
    vectors = []
    for item in sorted(data, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0):
        vector = item.get("embedding") if isinstance(item, dict) else None
        if isinstance(vector, str):  # encoding_format="base64": little-endian float32
            import array
            import base64

            vector = array.array("f", base64.b64decode(vector)).tolist()
        if not isinstance(vector, list):
            raise APIResponseError("an embedding is missing from the response", body=body, request_id=request_id)
        if vector and isinstance(vector[0], list):
            raise APIResponseError(
                f"the server returned one vector per token ({len(vector)} tokens) instead of one per input:"
                " it runs without pooling. Use an embedding model whose GGUF declares its pooling (such as"
                " nomic-embed-text), or start llama.cpp's llama-server with --pooling mean",
                body=shorten(json.dumps(body), 500), request_id=request_id)
        if not all(isinstance(x, (int, float)) for x in vector):
            raise APIResponseError("an embedding is not a list of numbers", body=shorten(json.dumps(body), 500),
                                   request_id=request_id)
        vectors.append(vector)
    return vectors
