"""Every `recipes/*.yaml` parses into a bench config and validates: its methods exist, every training run it
implies builds a DistillConfig and TrainingArguments, its LoRA options make a peft config; and the paper's
hyper-parameters are what the recipes hold (kid-method.md: LoRA rank 64 / alpha 32, rank 8 for CodeGen, lr 2e-4,
batch 16, 8 epochs of Spider's 8,659 training questions, input <= 2048, output 128-256)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kidsql.experiments import steps
from kidsql.experiments.config import student_budget
from kidsql.experiments.bench import BenchConfig, seeds_of, variants
from kidsql.config import load_dataclass

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
SPIDER_TRAIN = 7000 + 1659


def test_the_three_paper_settings_are_there():
    assert {p.stem for p in RECIPES} >= {"qwen1.5-0.5b-from-4b", "qwen2.5-coder-0.5b-from-7b", "codegen-350m-from-2b"}


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_parses_and_validates(recipe, tmp_path):
    from kidsql.distill.methods import get_method
    from kidsql.models import LoraOptions

    cfg = load_dataclass(BenchConfig, recipe, data=str(tmp_path), out=str(tmp_path / "out"))
    assert seeds_of(cfg) and variants(cfg)
    assert (cfg.batch_size, cfg.learning_rate, cfg.lora, cfg.lora_alpha) == (16, 2e-4, True, 32)
    assert cfg.lora_r == (8 if "codegen" in recipe.stem else 64)
    assert cfg.student_steps * cfg.batch_size == pytest.approx(8 * SPIDER_TRAIN, rel=0.01)
    assert cfg.max_prompt_tokens <= 2048 and 128 <= cfg.max_sql_tokens <= 256
    for k, variant in enumerate(variants(cfg)):
        config = steps.distill_config(tmp_path, variant.method, cfg.student, tmp_path / variant.name,
                                  student_budget(cfg), teacher=cfg.teacher,
                                  overrides={**cfg.run_overrides(), **variant.overrides})
        assert config.tokenizer == cfg.student  # a hub id: the tokenizer comes from the model
        get_method(config.method, **config.method_overrides())
        assert (config.max_steps, config.per_device_train_batch_size) == (cfg.student_steps, 16)
        LoraOptions(r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout).to_peft()


def test_paper_script_is_valid_bash_and_says_how_to_use_it():
    script = ROOT / "scripts" / "paper.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    res = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert res.returncode == 2 and "usage: bash scripts/paper.sh DATA_DIR" in res.stderr
