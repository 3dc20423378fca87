"""kidsql: knowledge distillation for text-to-SQL LMs (KID and its baselines) with a sandboxed SQL evaluator."""

__version__ = "0.1.0"
