from clara_hydra.automl.defs import (  # noqa: F401
    FAILED_SCORE,
    Context,
    ContextKey,
    Outcome,
    Recommendation,
    SearchRange,
    SearchResult,
    SearchSpace,
    Status,
)
