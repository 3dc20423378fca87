"""Benchmarks in: loaders (Spider, BIRD, JSONL), schema types, and the embedded benchmark generator."""

from kidsql.data.types import Benchmark, Column, Example, ForeignKey, Schema, Table

__all__ = ["Benchmark", "Column", "Example", "ForeignKey", "Schema", "Table"]
