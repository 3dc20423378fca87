"""`kidsql export --model DIR --out DIR --merge-lora`: a trained LoRA student as one standalone model folder.

The folder loads with `AutoModelForCausalLM.from_pretrained` alone (no peft, no base checkpoint) and keeps the
tokenizer and `prompt_options.json`, so `kidsql predict` builds the prompts it was trained on.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="trained model folder (e.g. runs/kid/final, a LoRA adapter)")
    parser.add_argument("--out", required=True, help="new folder for the standalone model (must not exist)")
    parser.add_argument("--merge-lora", "--merge_lora", dest="merge_lora", action="store_true",
                        help="merge the LoRA adapter into its base weights (required: the one export there is)")
    parser.add_argument("--dtype", default="float32", help="dtype of the saved weights: float32, bfloat16, float16")


def run(args: argparse.Namespace) -> int:
    from kidsql.errors import KidsqlError
    from kidsql.models import export_model

    if not args.merge_lora:
        raise KidsqlError("--merge-lora is required: export writes the adapter merged into its base model")
    out = export_model(args.model, args.out, merge_lora=True, dtype=args.dtype)
    print(f"wrote {out}: a standalone model (AutoModelForCausalLM.from_pretrained({str(out)!r}))")
    return 0
