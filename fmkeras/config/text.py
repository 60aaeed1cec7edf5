"""The `text` section: columns and tokenization of text sources (`data.source=text:...`)."""
from __future__ import annotations

import dataclasses
from typing import Literal, Optional

from fmkeras.config.section import ConfigSection, FieldCheck
from fmkeras.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class TextConfig(ConfigSection):
    """Text sources (`data.source=text:...`): which columns hold text and label, and how the
    `TextVectorization` layer inside the model splits text into `sequence_length` token ids
    from a vocabulary of at most `max_tokens` (learned from the training split, or read from
    `vocabulary`)."""
    PATH = "text"

    text_column: str = "text"
    label_column: str = "label"
    max_tokens: int = 20000
    sequence_length: int = 64
    standardize: Literal["lower_and_strip_punctuation", "lower", "strip_punctuation", "none",
                         "lower_and_split_punctuation"] = "lower_and_strip_punctuation"
    ngrams: int = 1  # 2 also adds word bigrams as tokens (after the unigrams, within sequence_length)
    token_dropout: float = 0.0  # training only: each token becomes out-of-vocabulary with this probability
    vocabulary: Optional[str] = None  # a vocabulary file (one token a line) instead of learning one, e.g. the
    # vocabulary.txt written beside a pretrained text backbone (model.weights) so token ids match
    # Wide & deep: "tf_idf" adds a bag-of-n-grams view of the whole text (`TextVectorization(output_mode=
    # "tf_idf")` over word 1..`wide_ngrams`-grams, at most `wide_max_tokens`, learned from the training
    # split) joined with the pooled backbone features at the output layer, so the classifier weighs every
    # word and bigram directly as well as the Transformer's contextual features. "none" = Transformer only.
    wide: Literal["none", "tf_idf"] = "none"
    wide_ngrams: int = 2
    wide_max_tokens: int = 50000
    # Linear member: also fit a TF-IDF (1..`wide_ngrams`-grams, sublinear tf, L2-normalized) logistic regression
    # to convergence, full batch, with the L2 strength picked from `linear_l2` on the validation split
    # (fmkeras.transfer.linear_text), and average it into the model with weight `linear_weight` (the
    # Transformer member(s) share the rest).
    linear_member: bool = False
    linear_weight: float = 0.5
    linear_l2: tuple = (3e-7, 1e-6, 3e-6, 1e-5)

    def check(self, c: FieldCheck):
        c.range("max_tokens", 3)
        c.range("sequence_length", 1)
        c.range("ngrams", 1, 3)
        c.range("token_dropout", 0.0, 0.9)
        c.range("wide_ngrams", 1, 3)
        c.range("wide_max_tokens", 3)
        c.range("linear_weight", 0.0, 1.0, low_open=True)
        if not self.linear_l2 or not all(isinstance(v, (int, float)) and v >= 0 for v in self.linear_l2):
            raise ConfigError(f"`{c.path('linear_l2')}` must be a non-empty list of numbers >= 0. "
                              f"Received: {c.path('linear_l2')}={self.linear_l2!r}")
