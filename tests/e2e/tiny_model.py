"""Write a tiny random llama model as a GGUF file, so a real llama.cpp server can run here.

The weights are random (fixed seed): the text it generates means nothing. It exists to put a
real OpenAI-compatible server on the other end of the wire. Run with the server's Python,
which has ``gguf`` and ``numpy``::

    python tests/e2e/tiny_model.py tiny.gguf
"""

from __future__ import annotations

import sys

import numpy as np
from gguf import GGUFWriter, TokenType

EMBED, BLOCKS, HEADS, FEED_FORWARD, CONTEXT = 64, 2, 4, 128, 2048
SEED = 1234

WORDS = (
    "the a robot love learn learned learning heart story once upon time there was who and to of in it "
    "small big light dark sea sky wire word world bright quiet song rain stone river tree bird hello "
    "friend machine dream night day sun moon star code byte server stream piece text"
).split()

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """SentencePiece-style tokens: control, all 256 bytes, letters, then whole words."""
    tokens = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [TokenType.BYTE] * 256
    pieces = list("abcdefghijklmnopqrstuvwxyz.,!?") + ["▁" + c for c in "abcdefghijklmnopqrstuvwxyz"] + ["▁"]
    pieces += ["▁" + w for w in WORDS] + [w for w in WORDS if len(w) > 1]
    for piece in pieces:
        if piece not in tokens:  # a duplicate token string aborts the load
            tokens.append(piece)
            types.append(TokenType.NORMAL)
    scores = [0.0] * 259 + [float(len(t)) for t in tokens[259:]]  # longer pieces merge first
    return tokens, scores, [int(t) for t in types]


def write(path: str) -> None:
    rng = np.random.default_rng(SEED)
    tokens, scores, types = vocabulary()
    vocab = len(tokens)

    def weights(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    writer = GGUFWriter(path, "llama")
    writer.add_name("openai-compat tiny random llama")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(EMBED)
    writer.add_block_count(BLOCKS)
    writer.add_feed_forward_length(FEED_FORWARD)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(EMBED // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    output = weights(vocab, EMBED, scale=1.0)
    output[:259] = 0.0  # control and byte tokens are never chosen: the text stays printable
    output[2] = weights(EMBED, scale=0.8)  # ...except </s>, now and then, so generations can end
    writer.add_tensor("token_embd.weight", weights(vocab, EMBED, scale=1.0))
    writer.add_tensor("output_norm.weight", np.ones(EMBED, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for i in range(BLOCKS):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(EMBED, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weights(EMBED, EMBED))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(EMBED, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weights(FEED_FORWARD, EMBED))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weights(FEED_FORWARD, EMBED))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weights(EMBED, FEED_FORWARD))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else "tiny.gguf")
