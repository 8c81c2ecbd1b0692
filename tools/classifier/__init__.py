"""Comment classification (hate / offensive / none, or any label set) in Korean and English.

- :mod:`~tools.classifier.base`: :class:`Classification` (a label, a score per label summing
  to 1, which classifier decided), the :class:`CommentClassifier` Protocol every classifier
  meets, and the exceptions.
- :mod:`~tools.classifier.data`: :func:`read_dataset` reads labelled CSV or TSV into a
  :class:`Dataset`; :func:`check_trainable`.
- :mod:`~tools.classifier.features`: the local model, TF-IDF n-gram views (Hangul letters,
  Kiwi morphemes, characters, words) and logistic regression over them: by default NB-LR
  (features scaled by naive-Bayes log-count ratios, one regression per label), or one
  regression per view with probabilities averaged (:data:`KINDS`, :data:`METHODS`). CPU
  only, no network.
- :mod:`~tools.classifier.local`: :class:`LocalClassifier`, the trained model and its
  directory (``manifest.json`` + ``model.joblib``).
- :mod:`~tools.classifier.train`: :func:`train_classifier` fits one on a :class:`Dataset`.
- :mod:`~tools.classifier.scoring`: :func:`evaluate` and :func:`score_predictions`
  (accuracy, macro-F1, per-label precision/recall/F1, confusion matrix).
- :mod:`~tools.classifier.llm`: :class:`LLMClassifier` and :func:`draft_reply`, through any
  :class:`~tools.chat_backend.ChatBackend`.
- :mod:`~tools.classifier.combined`: :class:`CombinedClassifier`, the local model first and
  the language model only when the local top score falls in the uncertain band.
- :mod:`~tools.classifier.tool`: :func:`make_classifier_tools`, the ``classify_comment`` tool
  over any of them.

Fitting and predicting block, so the async API (:func:`train_classifier`, :func:`evaluate`,
``classify``) runs them in ``asyncio.to_thread``; :meth:`LocalClassifier.load` and ``save``
are plain blocking calls.
"""

from tools.classifier import features as _features
from tools.classifier.base import (
    DEFAULT_LABELS,
    Classification,
    ClassifierError,
    ClassifierInputError,
    CommentClassifier,
    ModelLoadError,
    prepare_comment,
)
from tools.classifier.combined import CombinedClassifier
from tools.classifier.data import Dataset, check_trainable, read_dataset
from tools.classifier.features import DEFAULT_C, DEFAULT_KIND, KINDS, METHODS
from tools.classifier.llm import (
    DEFAULT_EXAMPLES,
    TOOL_NAME,
    FewShotExample,
    LLMClassifier,
    Tone,
    draft_reply,
    load_examples,
)
from tools.classifier.local import LocalClassifier, Manifest
from tools.classifier.scoring import Evaluation, evaluate, score_predictions
from tools.classifier.tool import make_classifier_tools
from tools.classifier.train import train_classifier

__all__ = [
    "DEFAULT_C",
    "DEFAULT_EXAMPLES",
    "DEFAULT_KIND",
    "DEFAULT_LABELS",
    "KINDS",
    "METHODS",
    "TOOL_NAME",
    "Classification",
    "ClassifierError",
    "ClassifierInputError",
    "CombinedClassifier",
    "CommentClassifier",
    "Dataset",
    "Evaluation",
    "FewShotExample",
    "LLMClassifier",
    "LocalClassifier",
    "Manifest",
    "ModelLoadError",
    "Tone",
    "check_trainable",
    "draft_reply",
    "evaluate",
    "load_examples",
    "make_classifier_tools",
    "prepare_comment",
    "read_dataset",
    "score_predictions",
    "train_classifier",
]

# Models saved before the classifier became a package pickled ``tools.classifier._Views``
# and its preprocessors by that path; these names keep them loadable.
_Views = _features._Views
_normalize = _features._normalize
_jamo = _features._jamo
_morphemes = _features._morphemes
