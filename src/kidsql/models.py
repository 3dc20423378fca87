"""Loading teachers and students: tiny Llamas built from scratch for CPU, local folders, hub ids, LoRA.

One code path serves both worlds: a "tiny:<name>" spec builds a small `LlamaForCausalLM` (the CPU stand-in for
Qwen/TinyLlama), anything else goes through `from_pretrained`. Distillation compares teacher and student
distributions token by token, so the pair must share one tokenizer: `check_vocab_compatible` refuses a mismatch
before any compute, and `shared_vocab_size` tells the trainer how many logit columns are comparable (models such
as Qwen pad their embedding matrix beyond the tokenizer's size).

Padding side is never mutated behind the caller's back: `load_tokenizer` sets the side training wants
("right"), and `kidsql.generate` passes `padding_side="left"` explicitly on every generation call.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kidsql.errors import KidsqlError
from kidsql.files import hex_digest
from kidsql.precision import resolve_dtype

if TYPE_CHECKING:  # heavy imports stay lazy so `kidsql --help` is fast
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

TINY_PREFIX = "tiny:"

# LlamaConfig kwargs of the built-in CPU models. Parameter counts quoted at a 4,096-token vocabulary with tied
# embeddings (the embedding matrix is counted once): 1m ~1.1M, 3m ~2.6M, 4m ~4.1M, 8m ~8.2M. Head dims stay even
# for RoPE. 3m is the demo/bench teacher: on the cpu benchmark it learnt faster per step than 4m, not only per
# second (docs/results/cpu-teacher-experiments.md).
TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "1m": dict(hidden_size=128, intermediate_size=320, num_hidden_layers=3, num_attention_heads=4),
    "3m": dict(hidden_size=192, intermediate_size=512, num_hidden_layers=4, num_attention_heads=6),
    "4m": dict(hidden_size=256, intermediate_size=640, num_hidden_layers=4, num_attention_heads=8),
    "8m": dict(hidden_size=320, intermediate_size=768, num_hidden_layers=6, num_attention_heads=8),
}
# Enough for CodeS-style prompts (~1024 tokens) plus the SQL continuation.
TINY_MAX_POSITIONS = 2048


@dataclass
class LoraOptions:
    """LoRA hyper-parameters; defaults are the paper's (rank 64, alpha 32) for Qwen/Llama."""

    r: int = 64
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    modules_to_save: list[str] = field(default_factory=list)

    def to_peft(self) -> Any:
        from peft import LoraConfig, TaskType

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=self.target_modules,
            modules_to_save=self.modules_to_save or None,
            task_type=TaskType.CAUSAL_LM,
        )


# --------------------------------------------------------------------------------------------------- tokenizer


def load_tokenizer(spec: str | Path, *, padding_side: str = "right") -> PreTrainedTokenizerBase:
    """AutoTokenizer from a local folder or hub id, guaranteed to have a pad token.

    A missing pad token becomes eos (then unk): padded positions are masked out everywhere, so which id fills
    them does not matter, only that batching works. `padding_side` defaults to "right" (training); generation
    overrides it per call.
    """
    from transformers import AutoTokenizer

    path = Path(spec)
    local = path.is_dir()
    if not local and _looks_like_path(str(spec)):
        raise KidsqlError(f"{spec}: tokenizer folder not found; pass an existing folder or a hub id")
    try:
        tok = AutoTokenizer.from_pretrained(str(path.resolve()) if local else str(spec), local_files_only=local)
    except (OSError, ValueError) as err:
        raise KidsqlError(_load_failure(str(spec), "tokenizer", local, err)) from err
    if tok.pad_token is None:
        fallback = tok.eos_token or tok.unk_token
        if fallback is None:
            raise KidsqlError(f"{spec}: tokenizer has no pad, eos or unk token; add a pad token to its special tokens")
        tok.pad_token = fallback
    tok.padding_side = padding_side
    return tok


# ------------------------------------------------------------------------------------------------------ models


def load_model(
    spec: str | Path,
    tokenizer: PreTrainedTokenizerBase | None = None,
    *,
    lora: LoraOptions | None = None,
    dtype: Any = None,
    seed: int = 0,
    attn_implementation: str | None = None,
) -> PreTrainedModel:
    """Build or load a causal LM; wrap it in fresh LoRA adapters when `lora` is given.

    spec: "tiny:<name>" (a `TINY_CONFIGS` entry) or "tiny:<cfg.yaml|cfg.json>" (LlamaConfig kwargs) builds a
    randomly initialised Llama sized to `tokenizer`; a local folder loads offline (its weight files checked
    first, and the model checked against `tokenizer`: `check_model_tokenizer`); a folder holding a peft
    adapter loads its base plus the adapter (with `lora`, that adapter is merged first so training starts from
    the adapted model); anything else is a hub id. Random init (tiny weights, LoRA A matrices) is a function of
    `seed` alone and leaves the global RNG untouched. `attn_implementation` ("eager", "sdpa",
    "flash_attention_2") is passed to transformers as is.
    """
    import torch

    torch_dtype = resolve_dtype(dtype)
    spec = str(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if spec.startswith(TINY_PREFIX):
            model = _build_tiny(spec[len(TINY_PREFIX):], tokenizer, attn_implementation).to(torch_dtype)
        else:
            model = _load_pretrained(spec, torch_dtype, attn_implementation)
            if tokenizer is not None:
                check_model_tokenizer(model, tokenizer, spec)
        if lora is not None:
            from peft import PeftModel, get_peft_model

            if isinstance(model, PeftModel):
                model = model.merge_and_unload()
            model = get_peft_model(model, lora.to_peft())
    return model


def tiny_config(name: str, tokenizer: PreTrainedTokenizerBase) -> Any:
    """The LlamaConfig of a tiny model: a built-in size or a YAML/JSON file, sized to the tokenizer."""
    from transformers import LlamaConfig

    if name in TINY_CONFIGS:
        kwargs = dict(TINY_CONFIGS[name])
    else:
        kwargs = _read_config_file(Path(name))
    kwargs.setdefault("max_position_embeddings", TINY_MAX_POSITIONS)
    kwargs.setdefault("tie_word_embeddings", True)
    kwargs.update(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    try:
        return LlamaConfig(**kwargs)
    except (TypeError, ValueError) as err:
        raise KidsqlError(f"{name}: invalid LlamaConfig kwargs ({err}); fix the config file") from err


def _build_tiny(name: str, tokenizer: PreTrainedTokenizerBase | None,
                attn_implementation: str | None = None) -> PreTrainedModel:
    from transformers import LlamaForCausalLM

    if tokenizer is None:
        raise KidsqlError(f"tiny:{name}: a tiny model needs the tokenizer (for its vocabulary); pass tokenizer=")
    config = tiny_config(name, tokenizer)
    if attn_implementation:
        config._attn_implementation = attn_implementation
    return LlamaForCausalLM(config)


def _read_config_file(path: Path) -> dict[str, Any]:
    known = ", ".join(f"tiny:{k}" for k in TINY_CONFIGS)
    if path.suffix.lower() not in {".yaml", ".yml", ".json"}:
        raise KidsqlError(f"tiny:{path}: unknown tiny model; use one of {known} or tiny:<config.yaml|config.json>")
    if not path.is_file():
        raise KidsqlError(f"{path}: tiny model config file not found; pass an existing YAML/JSON file")
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise KidsqlError(f"{path}: cannot parse the tiny model config ({err}); fix its syntax") from err
    if not isinstance(data, dict):
        raise KidsqlError(f"{path}: tiny model config must be a mapping of LlamaConfig kwargs")
    return data


def _load_pretrained(spec: str, torch_dtype: torch.dtype, attn_implementation: str | None = None) -> PreTrainedModel:
    from transformers import AutoModelForCausalLM

    path = Path(spec)
    local = path.is_dir()
    if not local and _looks_like_path(spec):
        raise KidsqlError(f"{spec}: model folder not found; pass an existing folder, a hub id or tiny:<size>")
    if local:
        check_weight_files(path)
    if local and (path / "adapter_config.json").is_file():
        return _load_adapter(path, torch_dtype, attn_implementation)
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        return AutoModelForCausalLM.from_pretrained(
            str(path.resolve()) if local else spec, local_files_only=local, dtype=torch_dtype, **kwargs
        )
    except (OSError, ValueError) as err:
        raise KidsqlError(_load_failure(spec, "model", local, err)) from err


def _load_adapter(folder: Path, torch_dtype: torch.dtype, attn_implementation: str | None = None) -> PreTrainedModel:
    """Base (a `base/` sub-folder saved by `save_model`, else the adapter's recorded base) plus the adapter."""
    from peft import PeftModel

    adapter_cfg = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    base_spec = folder / "base" if (folder / "base").is_dir() else adapter_cfg.get("base_model_name_or_path")
    if not base_spec:
        raise KidsqlError(f"{folder}/adapter_config.json: no base model recorded and no base/ folder; "
                          "save the adapter with kidsql.models.save_model")
    base = _load_pretrained(str(base_spec), torch_dtype, attn_implementation)
    return PeftModel.from_pretrained(base, str(folder), is_trainable=False)


def save_model(model: Any, tokenizer: PreTrainedTokenizerBase | None, out_dir: Path, *, merge: bool = False) -> Path:
    """Save a model (and tokenizer) so that `load_model(str(out_dir))` restores it exactly.

    A peft model is saved as its adapter; when its base cannot be found again (built from scratch, e.g. a tiny
    model) the bare base weights go to `out_dir/base`. `merge=True` saves a merged copy instead (the live
    model keeps its adapters, so this is safe mid-training; it costs one model copy of memory).
    """
    from accelerate.utils import extract_model_from_parallel
    from peft import PeftModel

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = extract_model_from_parallel(model)
    if isinstance(model, PeftModel):
        if merge:
            copy.deepcopy(model).merge_and_unload().save_pretrained(out_dir)
        else:
            model.save_pretrained(out_dir)
            base_name = model.peft_config[model.active_adapter].base_model_name_or_path
            if not _is_findable(base_name):
                copy.deepcopy(model).unload().save_pretrained(out_dir / "base")
    else:
        model.save_pretrained(out_dir)
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)
        write_vocab_stamp(out_dir, tokenizer)
    return out_dir


# ------------------------------------------------------------------------------------------- compatibility


def output_dim(model: Any) -> int:
    """Number of logit columns the model produces (may exceed the tokenizer's size: padded embeddings)."""
    from accelerate.utils import extract_model_from_parallel

    model = extract_model_from_parallel(model)
    head = model.get_output_embeddings()
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(model.config.vocab_size)


def check_vocab_compatible(teacher: Any, student: Any, teacher_tok: Any, student_tok: Any) -> None:
    """Refuse, before any compute, a teacher/student pair whose token distributions cannot be compared."""
    fix = "use a teacher/student pair with the same tokenizer"
    check_same_tokenizer(teacher_tok, student_tok)
    t_size = len(teacher_tok)
    for role, model in (("teacher", teacher), ("student", student)):
        dim = output_dim(model)
        if dim < t_size:
            raise KidsqlError(f"{role} model outputs {dim} logits but the tokenizer has {t_size} tokens; {fix}")


def check_same_tokenizer(teacher_tok: Any, student_tok: Any) -> None:
    """The tokenizer half of `check_vocab_compatible`: cheap, so it runs before the teacher's weights load."""
    fix = "use a teacher/student pair with the same tokenizer"
    t_size, s_size = len(teacher_tok), len(student_tok)
    if t_size != s_size:
        raise KidsqlError(f"teacher tokenizer has {t_size} tokens, student tokenizer {s_size}; {fix}")
    t_vocab, s_vocab = teacher_tok.get_vocab(), student_tok.get_vocab()
    if t_vocab != s_vocab:
        differing = sorted(set(t_vocab.items()) ^ set(s_vocab.items()), key=lambda kv: kv[1])
        example = differing[0][0] if differing else "?"
        raise KidsqlError(f"teacher and student vocabularies differ ({len(differing)} token/id pairs, "
                          f"e.g. {example!r}) although both have {t_size} tokens; {fix}")
    if teacher_tok.eos_token_id != student_tok.eos_token_id:
        raise KidsqlError(f"teacher EOS {teacher_tok.eos_token!r} (id {teacher_tok.eos_token_id}) differs from the "
                          f"student's {student_tok.eos_token!r} (id {student_tok.eos_token_id}): the student would "
                          "learn to stop where the teacher never does; use a pair with the same EOS (e.g. both base "
                          "or both chat tokenizers)")


VOCAB_STAMP = "kidsql_vocab.json"
# Embedding rows beyond the tokenizer are padding only in multiples of this (transformers'
# `resize_token_embeddings(pad_to_multiple_of=...)`: OPT 8, Pythia and Qwen 64/128); other surplus rows mean the
# tokenizer is not the model's.
PAD_MULTIPLE = 8


def vocab_fingerprint(tokenizer: Any) -> dict[str, Any]:
    """Size, a hash of every (token, id) pair and the bos/eos/unk ids: what a model's embedding rows mean."""
    pairs = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False)
    return {"tokens": len(tokenizer), "sha256": hex_digest(pairs),
            "special": {k: getattr(tokenizer, f"{k}_token_id") for k in ("bos", "eos", "unk")}}


def write_vocab_stamp(folder: Path | str, tokenizer: Any) -> None:
    """Record, beside a saved model, the vocabulary it was trained with: `check_model_tokenizer` compares a
    tokenizer against it, which is the only way to tell a foreign tokenizer.json of similar size."""
    Path(folder, VOCAB_STAMP).write_text(json.dumps(vocab_fingerprint(tokenizer), indent=1) + "\n", encoding="utf-8")


def _tokenizer_file(tokenizer: Any) -> str:
    """The file (or folder) a tokenizer was loaded from, for messages."""
    where = Path(str(getattr(tokenizer, "name_or_path", "") or "tokenizer"))
    return str(where / "tokenizer.json") if (where / "tokenizer.json").is_file() else str(where)


def check_model_tokenizer(model: Any, tokenizer: Any, spec: str) -> None:
    """Refuse, before any compute, a tokenizer whose ids do not mean what the model's embedding rows mean.

    Three tests, each a one-line error naming the tokenizer's file: the vocabulary recorded with a model kidsql
    saved (`VOCAB_STAMP`), or else the model folder's own tokenizer when another one is used; the sizes (every
    token id needs an embedding row; surplus rows only as padding to a multiple of `PAD_MULTIPLE`); and the
    special token ids (inside the embedding).
    """
    from accelerate.utils import extract_model_from_parallel

    name, n = _tokenizer_file(tokenizer), len(tokenizer)
    folder = Path(spec)
    stamp_file = folder / VOCAB_STAMP
    if stamp_file.is_file():
        try:
            stamp = json.loads(stamp_file.read_text(encoding="utf-8"))
        except ValueError:
            raise KidsqlError(f"{stamp_file}: malformed JSON; delete it (the model is then checked by size only)") from None
        mine = vocab_fingerprint(tokenizer)
        if (stamp.get("tokens"), stamp.get("sha256")) != (mine["tokens"], mine["sha256"]):
            raise KidsqlError(f"{name}: its vocabulary ({n} tokens) is not the one {spec} was trained with "
                              f"({stamp.get('tokens')} tokens, {stamp_file}); use the model's own tokenizer")
        if stamp.get("special") != mine["special"]:
            raise KidsqlError(f"{name}: special token ids {mine['special']} differ from those {spec} was trained "
                              f"with ({stamp.get('special')}); use the model's own tokenizer")
    elif folder.is_dir() and (folder / "tokenizer.json").is_file() and Path(str(tokenizer.name_or_path)).resolve() != folder.resolve():
        own = load_tokenizer(folder)
        if own.get_vocab() != tokenizer.get_vocab():
            raise KidsqlError(f"{name}: its vocabulary ({n} tokens) differs from {folder / 'tokenizer.json'} "
                              f"({len(own)} tokens), the model's own; use the model's tokenizer")
    bare = extract_model_from_parallel(model)
    rows = {"input embedding": int(bare.get_input_embeddings().weight.shape[0]), "output layer": output_dim(bare)}
    for what, count in rows.items():
        if count < n:
            raise KidsqlError(f"{name}: {n} tokens, but the {what} of {spec} has only {count} rows; "
                              "use the model's own tokenizer")
        if count > n and count % PAD_MULTIPLE:
            raise KidsqlError(f"{name}: {n} tokens, but the {what} of {spec} has {count} rows (not padding to a "
                              f"multiple of {PAD_MULTIPLE}); use the model's own tokenizer")
    limit = min(rows.values())
    for key, tid in vocab_fingerprint(tokenizer)["special"].items():
        if tid is not None and not 0 <= tid < limit:
            raise KidsqlError(f"{name}: {key} token id {tid} lies outside the {limit} embedding rows of {spec}; "
                              "use the model's own tokenizer")


def check_weight_files(folder: Path) -> None:
    """Every `*.safetensors` file of a model folder is whole: its header parses and the tensors it lists fit in
    the file. A truncated or empty file is a one-line error naming it instead of a loader traceback."""
    for path in sorted(Path(folder).glob("*.safetensors")):
        size = path.stat().st_size
        problem = None
        with open(path, "rb") as fh:
            head = fh.read(8)
            header_len = int.from_bytes(head, "little") if len(head) == 8 else None
            if header_len is None or header_len > size - 8:
                problem = f"{size} bytes, header cut off"
            else:
                try:
                    header = json.loads(fh.read(header_len))
                    end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
                except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                    problem = "unreadable header"
                else:
                    if 8 + header_len + end > size:
                        problem = f"{size} bytes of {8 + header_len + end}"
        if problem:
            raise KidsqlError(f"{path}: truncated or corrupt weights ({problem}); save or download the model again")


def max_positions(*models: Any) -> int | None:
    """The fewest positions any of `models` can embed (`max_position_embeddings`, GPT-2's `n_positions`); None
    when no config says (e.g. rotary models configured without a limit)."""
    from accelerate.utils import extract_model_from_parallel

    limits = []
    for model in models:
        config = getattr(extract_model_from_parallel(model), "config", None)
        limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        if isinstance(limit, int) and limit > 0:
            limits.append(limit)
    return min(limits) if limits else None


def shared_vocab_size(teacher: Any, student: Any, tok: Any) -> int:
    """Logit columns comparable between the two models: the trainer slices `logits[..., :n]` on both."""
    return min(len(tok), output_dim(teacher), output_dim(student))


def count_parameters(model: Any, *, trainable_only: bool = False) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# ----------------------------------------------------------------------------------------------------- helpers


def has_tokenizer(spec: str | Path) -> bool:
    """Whether `spec` is a folder holding a saved tokenizer (`save_pretrained`)."""
    p = Path(spec)
    return p.is_dir() and any((p / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json"))


def is_hub_id(spec: str) -> bool:
    """A spec that names a hub model (`name` or `owner/name`) rather than a folder or a tiny model."""
    return bool(spec) and not spec.startswith(TINY_PREFIX) and not _looks_like_path(spec) and not Path(spec).exists()


def _looks_like_path(spec: str) -> bool:
    from kidsql.validate import looks_local

    return looks_local(spec)


def _is_findable(name: str | None) -> bool:
    return bool(name) and (Path(name).is_dir() or not _looks_like_path(name))


def _load_failure(spec: str, what: str, local: bool, err: Exception) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if local:
        return f"{spec}: cannot load the {what} from this folder ({first}); it must be a save_pretrained folder"
    return (f"{spec}: no such folder, and cannot load the {what} from the Hugging Face hub ({first}); "
            "offline, download it once and pass a local folder instead")


def keep_layers(model_dir: Path | str, out_dir: Path | str, num_layers: int) -> Path:
    """A smaller model made of `num_layers` of the decoder layers of `model_dir` (evenly spaced, first and last
    kept), its embeddings, final norm and output layer: DistilBERT's student initialisation (Sanh et al., 2019).

    Why: the paper's students are pretrained LMs, not random networks. On a CPU there is no time to pretrain a
    student, and a randomly initialised one learns nothing in a demo's budget (docs/results/), so the demo and
    bench start every student from the same layer-subset of the trained teacher: a shared, weaker starting point
    from which the methods differ only in what they distil. Works for models that keep their decoder layers in
    `model.model.layers` (Llama, Qwen, Mistral, ...).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_weight_files(Path(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None:
        raise KidsqlError(f"{model_dir}: no model.model.layers to take a subset of; use a Llama-style model or pass a student spec")
    total = len(layers)
    if not 1 <= num_layers <= total:
        raise KidsqlError(f"{model_dir} has {total} layers; keep between 1 and {total} (got {num_layers})")
    keep = sorted({round(i * (total - 1) / max(1, num_layers - 1)) for i in range(num_layers)})
    model.model.layers = torch.nn.ModuleList(layers[i] for i in keep)
    for new_index, layer in enumerate(model.model.layers):
        if hasattr(getattr(layer, "self_attn", None), "layer_idx"):
            layer.self_attn.layer_idx = new_index  # the key/value cache is indexed by it
    model.config.num_hidden_layers = len(keep)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [model.config.layer_types[i] for i in keep]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    if any((Path(model_dir) / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json")):
        AutoTokenizer.from_pretrained(str(model_dir)).save_pretrained(str(out))
    if (Path(model_dir) / VOCAB_STAMP).is_file():
        shutil.copyfile(Path(model_dir) / VOCAB_STAMP, out / VOCAB_STAMP)
    (out / "kept_layers.json").write_text(json.dumps({"source": str(model_dir), "layers": keep}), encoding="utf-8")
    return out


def export_model(src: Path | str, out_dir: Path | str, *, merge_lora: bool = True, dtype: Any = None) -> Path:
    """A standalone copy of a trained model folder: a LoRA adapter (with its base) merged into one model that
    `AutoModelForCausalLM.from_pretrained(out_dir)` loads alone, plus its tokenizer and prompt options. Why: a
    served model should not need peft, the base checkpoint, or kidsql to load. `out_dir` must not exist yet
    (nothing is overwritten)."""
    import shutil

    from kidsql.prompts import PROMPT_OPTIONS_FILE

    src, out = Path(src), Path(out_dir)
    if not src.is_dir():
        raise KidsqlError(f"{src}: model folder not found; pass a folder written by kidsql train/distill")
    if out.exists() and any(out.iterdir()):
        raise KidsqlError(f"{out}: already exists and is not empty; pass a new --out (nothing is overwritten)")
    if not (src / "adapter_config.json").is_file() and merge_lora:
        raise KidsqlError(f"{src}: holds no LoRA adapter (no adapter_config.json), so there is nothing to merge; "
                          "the folder is already standalone")
    tokenizer = load_tokenizer(str(src)) if has_tokenizer(src) else None
    model = load_model(str(src), tokenizer, dtype=dtype or "float32")
    from peft import PeftModel

    if isinstance(model, PeftModel) and merge_lora:
        model = model.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    if (src / PROMPT_OPTIONS_FILE).is_file():
        shutil.copy2(src / PROMPT_OPTIONS_FILE, out / PROMPT_OPTIONS_FILE)
    return out
