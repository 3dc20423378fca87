"""Knowledge distillation: divergences on logits, sequence sources (gold, generated, KID's imperfect rewrite), trainer.

Kept import-light on purpose: `kidsql.cli` imports command modules eagerly, so torch loads only when a
submodule such as `kidsql.distill.divergences` is imported.
"""
