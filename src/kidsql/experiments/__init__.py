"""Experiments on top of the library: `kidsql demo` and `kidsql bench`, their steps and their reports.

Start at `demo.py` (one teacher, three students, one table) or `bench.py` (every method over seeds and splits).
Both are built from `steps.py` (benchmark, teacher, students, predictions, scores; each cached where it is slow),
configured by `config.py` (`RunConfig`, the training `Budget`), and report through `report.py` (numbers, tables,
plots) and `curves.py` (learning curves). `warmup.py` is the students' shared SFT start and `shipped_teacher.py`
the demo's teacher that ships with kidsql. The library (`kidsql.distill`, `kidsql.evaluate`, ...) never imports
this package.
"""
