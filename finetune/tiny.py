"""A tiny random Qwen2 model with the tool-calling chat template, for tests and examples.

``init_tiny`` writes a directory that loads with plain ``AutoModelForCausalLM`` and
``AutoTokenizer``: a two-layer Qwen2 with hidden size 64 and random weights, a byte-level BPE
tokenizer trained on the spot (Korean and English text, JSON tool calls) and the project's
Qwen2.5 chat template. It is built offline in about a second and trains on CPU in seconds,
so the whole fine-tuning path (export, train, merge, serve) runs without a download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune.libs import lib
from finetune.template import CHAT_TEMPLATE, END_OF_TURN, SPECIAL_TOKENS, TOOL_TOKENS

__all__ = ["TINY_SHAPE", "init_tiny"]

TINY_SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
}
VOCAB_SIZE = 1024

_CORPUS_LINES = (
    "You are a helpful assistant.",
    "You may call one or more functions to assist with the user query.",
    'You are provided with function signatures within <tools></tools> XML tags: {"type": '
    '"function", "function": {"name": "search_docs", "description": "Search the documents", '
    '"parameters": {"type": "object", "properties": {"query": {"type": "string"}}, '
    '"required": ["query"]}}}',
    '{"name": "stock_quote", "arguments": {"symbol": "AAPL"}}',
    '{"name": "run_sql", "arguments": {"query": "SELECT count(*) FROM orders"}}',
    "What is the vacation policy? How many days of leave do new employees get?",
    "The answer is in the handbook: fifteen days a year, see page 3.",
    "휴가 정책은 어떻게 되나요? 신입 사원은 연차가 며칠인가요?",
    "사내 규정에 따르면 입사 첫 해에는 연차 15일이 주어집니다.",
    "주가를 알려 주세요. 삼성전자 005930 현재 가격은 얼마인가요?",
    "0123456789 .,:;!?'\"()[]{}<>/\\|-_=+*&^%$#@~` \n\t",
)


def init_tiny(out: Path, *, seed: int = 0) -> Path:
    """Write a tiny random Qwen2 model, its tokenizer and chat template to ``out``.

    Args:
        out: The directory to write (created; files in it are overwritten).
        seed: Seeds the weights, so the same seed gives the same model.

    Returns:
        ``out``, ready for ``AutoModelForCausalLM.from_pretrained(out)``.
    """
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _train_tokenizer()
    tokenizer.save_pretrained(out)
    _build_model(tokenizer, seed).save_pretrained(out)
    return out


def _train_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Repeated so the merges for the template's own words are learnt before the vocabulary fills.
    backend.train_from_iterator(list(_CORPUS_LINES) * 4, trainer=trainer)
    tokenizer = lib("transformers").PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=END_OF_TURN,
        pad_token=SPECIAL_TOKENS[0],
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=TINY_SHAPE["max_position_embeddings"],
        padding_side="right",
    )
    tokenizer.add_tokens(list(TOOL_TOKENS))
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _build_model(tokenizer: Any, seed: int) -> Any:
    torch, transformers = lib("torch"), lib("transformers")

    torch.manual_seed(seed)
    eos = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    pad = tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS[0])
    config = transformers.Qwen2Config(
        vocab_size=len(tokenizer),
        tie_word_embeddings=True,
        bos_token_id=pad,
        eos_token_id=eos,
        pad_token_id=pad,
        **TINY_SHAPE,
    )
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config = transformers.GenerationConfig(
        eos_token_id=[eos, pad], pad_token_id=pad, bos_token_id=pad, max_new_tokens=64
    )
    return model
