"""Evaluation suite: cross-validation, cross-corpus, noise robustness, adversarial robustness, paper tables.

Every command is resumable (one atomically written result JSON per finished run, see
:mod:`mtl_aug.evaluation.runs`) and reports mean ± std over seeds (:mod:`mtl_aug.evaluation.aggregate`).
"""
